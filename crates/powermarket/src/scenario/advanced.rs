//! easy_marl's advanced market (`make_advanced_params.py`, `get_params()`):
//! one week of hours with wind, solar, ramp limits and ramp costs.

use super::spline::periodic_cubic_spline;
use super::Scenario;
use crate::error::Result;
use std::f64::consts::PI;

/// Hours in the advanced week: five weekdays, then two weekend days.
pub const ADVANCED_HOURS: usize = 168;

/// Weekday demand shape: (hour of day, relative level); periodic over 24 h.
pub const WEEKDAY_POINTS: [(f64, f64); 5] = [
    (0.0, 0.5),
    (8.0, 0.85),
    (13.0, 0.7),
    (19.0, 1.0),
    (24.0, 0.5),
];
/// Weekend demand shape: (hour of day, relative level); periodic over 24 h.
pub const WEEKEND_POINTS: [(f64, f64); 5] = [
    (0.0, 0.45),
    (10.0, 0.75),
    (14.0, 0.6),
    (20.0, 0.85),
    (24.0, 0.45),
];

/// One day of the shape `points` at hours 0, 1, ..., 23.
fn day(points: &[(f64, f64)]) -> Result<Vec<f64>> {
    let xs: Vec<f64> = points.iter().map(|p| p.0).collect();
    let ys: Vec<f64> = points.iter().map(|p| p.1).collect();
    let hours: Vec<f64> = (0..24).map(|h| h as f64).collect();
    periodic_cubic_spline(&xs, &ys, &hours)
}

/// The week's demand shape (168 values, peak 1): five weekdays then two
/// weekend days, each the periodic cubic spline through its points at hours
/// 0..23, divided by the week's maximum.
pub fn advanced_demand_shape() -> Result<Vec<f64>> {
    let (wd, we) = (day(&WEEKDAY_POINTS)?, day(&WEEKEND_POINTS)?);
    let mut week = Vec::with_capacity(ADVANCED_HOURS);
    for d in 0..7 {
        week.extend_from_slice(if d < 5 { &wd } else { &we });
    }
    let top = super::max_of(&week);
    Ok(week.into_iter().map(|x| x / top).collect())
}

/// Solar load factor at hour `t` of the week: a daylight bell,
/// `0.75 * sin^2(pi (h - 6) / 12)` for hour of day `h` in [6, 18], else 0
/// (peak 0.75 at noon, the same every day).
pub fn solar_load_factor(t: usize) -> f64 {
    let h = (t % 24) as f64;
    if (6.0..=18.0).contains(&h) {
        0.75 * (PI * (h - 6.0) / 12.0).sin().powi(2)
    } else {
        0.0
    }
}

/// Offshore wind load factor at hour `t` of the week: a 3.5-day weather
/// swing plus a mild daily cycle,
/// `0.5 + 0.25 sin(2 pi t / 84) + 0.1 cos(2 pi t / 24)` (in [0.15, 0.85]).
pub fn wind_load_factor(t: usize) -> f64 {
    let t = t as f64;
    0.5 + 0.25 * (2.0 * PI * t / 84.0).sin() + 0.1 * (2.0 * PI * t / 24.0).cos()
}

impl Scenario {
    /// easy_marl's `get_params()`: 168 hours; plants of 40, 40, 20, 20, 20 MW
    /// with costs 0, 0, 10, 20, 30 €/MWh, ramp limits 1, 1, 0.25, 0.5, 1
    /// (share of capacity per hour) and ramp costs 0, 0, 1, 1, 1 €/MW; plant 0
    /// is offshore wind and plant 1 solar (synthetic load factors: see
    /// [`wind_load_factor`], [`solar_load_factor`]); demand
    /// [`advanced_demand_shape`] times 0.75 x total capacity (105 MW peak).
    pub fn advanced() -> Result<Self> {
        let capacities = vec![40.0, 40.0, 20.0, 20.0, 20.0];
        let total: f64 = capacities.iter().sum();
        let demand = advanced_demand_shape()?
            .into_iter()
            .map(|x| x * 0.75 * total)
            .collect();
        let n = capacities.len();
        let mut availability = vec![1.0; ADVANCED_HOURS * n];
        for t in 0..ADVANCED_HOURS {
            availability[t * n] = wind_load_factor(t);
            availability[t * n + 1] = solar_load_factor(t);
        }
        let mut s = Self::with_fleet(capacities, vec![0.0, 0.0, 10.0, 20.0, 30.0], demand);
        s.availability = Some(availability);
        s.ramp_limits = Some(vec![1.0, 1.0, 0.25, 0.5, 1.0]);
        s.ramp_costs = Some(vec![0.0, 0.0, 1.0, 1.0, 1.0]);
        s.validated()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hold-out values, computed independently with SciPy 1.17.1:
    /// `CubicSpline([0, 8, 13, 19, 24], [.5, .85, .7, 1, .5], bc_type="periodic")(arange(24))`
    /// (and the weekend points), printed with `repr`.
    const SCIPY_WEEKDAY: [f64; 24] = [
        0.5,
        0.47137297426999886,
        0.48983194285503334,
        0.5421734837018716,
        0.6151941747572816,
        0.6956905939680313,
        0.7704593192808891,
        0.8262969286426226,
        0.85,
        0.833770091180922,
        0.7914286795378198,
        0.7422022223042563,
        0.7053171767137952,
        0.7,
        0.7389600022149212,
        0.8088379046845583,
        0.8897572815533982,
        0.9618417069659272,
        1.005214755066632,
        1.0,
        0.9339255417328067,
        0.8251375835209863,
        0.6993868544427627,
        0.5824240835763593,
    ];
    const SCIPY_WEEKEND: [f64; 24] = [
        0.45,
        0.39830579096045204,
        0.3895003138731952,
        0.41430814500941615,
        0.46345386064030136,
        0.5276620370370371,
        0.5976572504708098,
        0.664164077212806,
        0.7179070935342122,
        0.7496108757062148,
        0.75,
        0.7152224576271187,
        0.6631198995605775,
        0.6169573917137476,
        0.6,
        0.6282701663527934,
        0.6888198367859385,
        0.7614583333333333,
        0.8259949780288764,
        0.8622390929064658,
        0.85,
        0.7774870527306967,
        0.6665097300690521,
        0.5472775423728813,
    ];

    #[test]
    fn spline_matches_scipy_hold_out() {
        let (wd, we) = (day(&WEEKDAY_POINTS).unwrap(), day(&WEEKEND_POINTS).unwrap());
        for h in 0..24 {
            assert!((wd[h] - SCIPY_WEEKDAY[h]).abs() < 1e-13, "weekday {h}");
            assert!((we[h] - SCIPY_WEEKEND[h]).abs() < 1e-13, "weekend {h}");
        }
        // Off the knots and outside the period (SciPy, same session):
        // wd(3.7), wd(-2.5), we(23.9).
        let xs = [0.0, 8.0, 13.0, 19.0, 24.0];
        let ys = [0.5, 0.85, 0.7, 1.0, 0.5];
        let v = periodic_cubic_spline(&xs, &ys, &[3.7, -2.5]).unwrap();
        assert!((v[0] - 0.5919022602809259).abs() < 1e-13);
        assert!((v[1] - 0.762773144772786).abs() < 1e-13);
        let xs = [0.0, 10.0, 14.0, 20.0, 24.0];
        let ys = [0.45, 0.75, 0.6, 0.85, 0.45];
        let v = periodic_cubic_spline(&xs, &ys, &[23.9]).unwrap();
        assert!((v[0] - 0.45787882415254244).abs() < 1e-13);
        assert!(periodic_cubic_spline(&xs, &[0.0, 1.0, 2.0, 3.0, 4.0], &[1.0]).is_err());
    }

    #[test]
    fn shape_is_the_week_normalised_to_peak_one() {
        let w = advanced_demand_shape().unwrap();
        assert_eq!(w.len(), 168);
        // The weekday spline overshoots its 19:00 knot: the peak is 18:00.
        let top = SCIPY_WEEKDAY[18];
        for d in 0..7 {
            let want = if d < 5 {
                &SCIPY_WEEKDAY
            } else {
                &SCIPY_WEEKEND
            };
            for h in 0..24 {
                assert!(
                    (w[d * 24 + h] - want[h] / top).abs() < 1e-13,
                    "day {d} hour {h}"
                );
            }
        }
        assert_eq!(super::super::max_of(&w), 1.0);
    }

    #[test]
    fn advanced_preset_fields() {
        let s = Scenario::advanced().unwrap();
        assert_eq!(s.t(), 168);
        assert_eq!(s.capacities, vec![40.0, 40.0, 20.0, 20.0, 20.0]);
        assert!((super::super::max_of(&s.demand) - 105.0).abs() < 1e-12);
        assert!((s.demand[19] - 105.0 / SCIPY_WEEKDAY[18]).abs() < 1e-12);
        assert_eq!(s.load_factor(0, 1), 0.0);
        assert!((s.load_factor(12, 1) - 0.75).abs() < 1e-12);
        assert_eq!(s.load_factor(7, 3), 1.0);
    }
}
