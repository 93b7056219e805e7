//! Core errors as Python exceptions, mapped in one place. Errors that have
//! a place carry it as attributes, so that callers read `e.field` or
//! `e.agent` instead of parsing the message:
//!
//! - `ScenarioError(ValueError)`: `field`, `agent`, `hour`, `market`;
//! - `ActionError(ValueError)`: `agent`, `market`, `component`, `value`;
//! - misuse (stepping before `reset`) is `RuntimeError`, a failed
//!   allocation `MemoryError`, anything else `ValueError`.

use powermarket::env::action::COMPONENTS;
use powermarket::error::MarketError;
use pyo3::exceptions::{PyMemoryError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;

pyo3::create_exception!(
    powermarket,
    ScenarioError,
    PyValueError,
    "A scenario field is invalid. Attributes: `field` (the field's name), \
     `reason` (the message without the field), and `agent`, `hour` and `market` \
     where the bad value has such a place (else None)."
);

pyo3::create_exception!(
    powermarket,
    ActionError,
    PyValueError,
    "An action value is NaN or infinite. Attributes: `agent` (None where only \
     the message names it), `market` (None outside a batch), `component` \
     (\"a0\" or \"a1\") and `value`."
);

/// A core error as the Python exception it maps to.
pub(crate) fn py_err(e: MarketError) -> PyErr {
    Python::attach(|py| to_py(py, &e, None).unwrap_or_else(|err| err))
}

fn to_py(py: Python<'_>, e: &MarketError, market: Option<usize>) -> PyResult<PyErr> {
    let msg = match market {
        // The message of an error inside a batch names the market first.
        Some(m) if !matches!(e, MarketError::BadAction { .. }) => format!("market {m}: {e}"),
        _ => e.to_string(),
    };
    Ok(match e {
        MarketError::InMarket { market, source } => to_py(py, source, Some(*market))?,
        MarketError::Misuse(_) => PyRuntimeError::new_err(msg),
        MarketError::Memory { .. } => PyMemoryError::new_err(msg),
        MarketError::Scenario {
            field,
            agent,
            hour,
            message,
        } => {
            let err = ScenarioError::new_err(msg);
            let v = err.value(py);
            v.setattr("field", *field)?;
            v.setattr("reason", message)?;
            v.setattr("agent", *agent)?;
            v.setattr("hour", *hour)?;
            v.setattr("market", market)?;
            err
        }
        MarketError::BadAction {
            agent,
            market: m,
            component,
            value,
            ..
        } => action_error(py, msg, Some(*agent), m.or(market), *component, *value),
        _ => PyValueError::new_err(msg),
    })
}

/// An [`ActionError`] with its attributes (`agent` None where the caller
/// names the place in words only).
pub(crate) fn action_error(
    py: Python<'_>,
    message: String,
    agent: Option<usize>,
    market: Option<usize>,
    component: usize,
    value: f64,
) -> PyErr {
    let err = ActionError::new_err(message);
    let located = (|| -> PyResult<()> {
        let v = err.value(py);
        v.setattr("agent", agent)?;
        v.setattr("market", market)?;
        v.setattr("component", &COMPONENTS[component % 2][..2])?;
        v.setattr("value", value)
    })();
    located.map(|_| err).unwrap_or_else(|e| e)
}

/// `r`, with a ValueError from converting scenario field `field` turned
/// into a [`ScenarioError`] naming it (TypeErrors stay as they are).
pub(crate) fn in_field<T>(field: &'static str, r: PyResult<T>) -> PyResult<T> {
    r.map_err(|e| {
        Python::attach(|py| {
            if !e.is_instance_of::<PyValueError>(py) || e.is_instance_of::<ScenarioError>(py) {
                return e;
            }
            let message = e.value(py).to_string();
            let err = ScenarioError::new_err(message.clone());
            let located = (|| -> PyResult<()> {
                let v = err.value(py);
                v.setattr("field", field)?;
                v.setattr("reason", message)?;
                for name in ["agent", "hour", "market"] {
                    v.setattr(name, py.None())?;
                }
                Ok(())
            })();
            located.map(|_| err).unwrap_or_else(|e| e)
        })
    })
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("ScenarioError", py.get_type::<ScenarioError>())?;
    m.add("ActionError", py.get_type::<ActionError>())?;
    Ok(())
}
