//! Pay-as-bid: every cleared MWh is paid its own offer price.

use super::mechanism::Settlement;

pub struct PayAsBid;

impl Settlement for PayAsBid {
    fn settle(&self, _price: f64, offer_prices: &[f64], paid: &mut [f64]) {
        paid.copy_from_slice(offer_prices);
    }
}
