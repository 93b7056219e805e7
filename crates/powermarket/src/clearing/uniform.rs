//! Uniform pricing: every cleared MWh is paid the clearing price.

use super::mechanism::Settlement;

pub struct Uniform;

impl Settlement for Uniform {
    fn settle(&self, price: f64, _offer_prices: &[f64], paid: &mut [f64]) {
        paid.fill(price);
    }

    /// Every MWh is paid the clearing price: the average is that price exactly.
    fn average(&self, price: f64, _paid: &[f64], _cleared: &[f64]) -> f64 {
        price
    }
}
