//! Storage units between Python and the core: `pm.Storage` objects (or
//! dicts) to [`Storage`], and back; the field table `_core.STORAGE_FIELDS`
//! that `pm.Storage` is generated from, and its check.

use powermarket::units::storage::{Storage, STORAGE_FIELDS};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyMapping, PyString, PyTuple};

/// One unit from a `pm.Storage` (or any object with its attributes) or a
/// mapping of its fields; `u` (None: a unit on its own) names it in errors.
/// Not validated.
fn unit_from_py(obj: &Bound<'_, PyAny>, u: Option<usize>) -> PyResult<Storage> {
    let py = obj.py();
    let who = match u {
        Some(u) => format!("storage[{u}] (sto_{u})"),
        None => "Storage".to_string(),
    };
    // Any mapping (a dict, a MappingProxyType, a UserDict) is read as a dict.
    let dict = if obj.cast::<PyMapping>().is_ok() && !obj.hasattr("power")? {
        let d = PyDict::new(py);
        d.call_method1("update", (obj,))?;
        Some(d)
    } else {
        None
    };
    if let Some(d) = &dict {
        for key in d.keys() {
            let key: String = key.extract().map_err(|_| {
                PyTypeError::new_err(format!("{who}: keys must be field names (str)"))
            })?;
            if key != "name" && !STORAGE_FIELDS.iter().any(|f| f.0 == key) {
                let valid: Vec<&str> = STORAGE_FIELDS.iter().map(|f| f.0).collect();
                return Err(PyValueError::new_err(format!(
                    "{who}: unknown field {key:?}; valid fields are: {}, name",
                    valid.join(", ")
                )));
            }
        }
    }
    let get = |name: &str| -> PyResult<Option<Bound<'_, PyAny>>> {
        match &dict {
            Some(d) => d.get_item(name),
            None => match obj.getattr(name) {
                Ok(v) => Ok(Some(v)),
                Err(e) if e.is_instance_of::<pyo3::exceptions::PyAttributeError>(py) => Ok(None),
                Err(e) => Err(e),
            },
        }
    };
    let mut unit = Storage::new(0.0, 0.0);
    for &(field, default, optional) in STORAGE_FIELDS {
        let number = |v: &Bound<'_, PyAny>| -> PyResult<f64> {
            // A real number (a NumPy one too), not a bool or a str.
            let bad = v.is_instance_of::<PyBool>() || v.is_instance_of::<PyString>();
            let x = if bad { None } else { v.extract::<f64>().ok() };
            x.ok_or_else(|| {
                PyTypeError::new_err(format!(
                    "{who}: `{field}` must be a number{}, got {}",
                    if optional { " or None" } else { "" },
                    v.repr().map(|r| r.to_string()).unwrap_or_default()
                ))
            })
        };
        let value = match get(field)? {
            Some(v) if !v.is_none() => Some(number(&v)?),
            // None means "derived" for the optional fields only.
            Some(_) if optional => None,
            Some(v) => Some(number(&v)?),
            None if default.is_some() || optional => default,
            None => {
                return Err(PyTypeError::new_err(format!(
                    "{who}: missing required field `{field}`"
                )))
            }
        };
        unit.set(field, value)
            .map_err(|e| PyValueError::new_err(format!("{who}: {e}")))?;
    }
    unit.name = match get("name")? {
        Some(v) if !v.is_none() => Some(match v.cast::<PyString>() {
            Ok(text) => text.to_str().map(str::to_string).map_err(|_| {
                PyValueError::new_err(format!(
                    "{who}: `name` cannot be encoded as UTF-8 (a lone surrogate?)"
                ))
            })?,
            Err(_) => {
                return Err(PyTypeError::new_err(format!(
                    "{who}: `name` must be a str or None, got {}",
                    v.get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                )))
            }
        }),
        _ => None,
    };
    Ok(unit)
}

/// The scenario field `storage` from Python: None or a list of units.
pub(crate) fn storage_from_py(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<Storage>> {
    let Some(obj) = obj else {
        return Ok(Vec::new());
    };
    if obj.cast::<PyDict>().is_ok() || obj.hasattr("power")? {
        return Err(PyTypeError::new_err(
            "scenario field `storage` must be a list of powermarket.Storage (or dicts), \
             got a single unit: wrap it in a list",
        ));
    }
    let items = obj.try_iter().map_err(|_| {
        PyTypeError::new_err(format!(
            "scenario field `storage` must be a list of powermarket.Storage, got {}",
            obj.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })?;
    items
        .enumerate()
        .map(|(u, item)| unit_from_py(&item?, Some(u)))
        .collect()
}

/// A unit's fields as a dict of plain values (`pm.Storage`'s keywords).
fn unit_dict<'py>(py: Python<'py>, unit: &Storage) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for &(field, _, _) in STORAGE_FIELDS {
        d.set_item(field, unit.get(field))?;
    }
    d.set_item("name", unit.name.clone())?;
    Ok(d)
}

/// The units as a list of dicts of plain values (for `Scenario.to_dict`).
pub(crate) fn storage_to_dicts<'py>(
    py: Python<'py>,
    units: &[Storage],
) -> PyResult<Bound<'py, PyAny>> {
    let list = units
        .iter()
        .map(|unit| unit_dict(py, unit))
        .collect::<PyResult<Vec<_>>>()?;
    Ok(pyo3::types::PyList::new(py, list)?.into_any())
}

/// The units as a list of `powermarket.Storage`.
pub(crate) fn storage_to_py<'py>(
    py: Python<'py>,
    units: &[Storage],
) -> PyResult<Bound<'py, PyAny>> {
    let class = py.import("powermarket.storage")?.getattr("Storage")?;
    let list = units
        .iter()
        .map(|unit| class.call((), Some(&unit_dict(py, unit)?)))
        .collect::<PyResult<Vec<_>>>()?;
    Ok(pyo3::types::PyList::new(py, list)?.into_any())
}

/// Check one storage unit (a ``pm.Storage`` or a dict of its fields) on its
/// own: a ValueError or TypeError naming the field. The reference price
/// and terminal value default from the market's generators, so they are
/// checked only when given.
#[pyfunction]
fn check_storage(unit: &Bound<'_, PyAny>) -> PyResult<()> {
    let unit = unit_from_py(unit, None)?;
    unit.validate(0, 0).map_err(|e| {
        let text = e.to_string();
        let text = text
            .split_once(": sto_0: ")
            .map_or(text.as_str(), |p| p.1)
            .to_string();
        PyValueError::new_err(format!("Storage: {text}"))
    })
}

pub(super) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let rows = STORAGE_FIELDS
        .iter()
        .map(|&(name, default, optional)| (name, default, optional).into_pyobject(py))
        .collect::<PyResult<Vec<_>>>()?;
    m.add("STORAGE_FIELDS", PyTuple::new(py, rows)?)?;
    m.add_function(wrap_pyfunction!(check_storage, m)?)?;
    Ok(())
}
