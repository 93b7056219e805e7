//! Storage units between Python and the core: `pm.Storage` objects (or
//! dicts) to [`Storage`], and back; the field table `_core.STORAGE_FIELDS`
//! that `pm.Storage` is generated from, and its check.

use powermarket::units::storage::{Storage, STORAGE_FIELDS};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

/// One unit from a `pm.Storage` (or any object with its attributes) or a
/// dict of its fields; `u` names it in errors. Not validated.
fn unit_from_py(obj: &Bound<'_, PyAny>, u: usize) -> PyResult<Storage> {
    let dict = obj.cast::<PyDict>().ok();
    if let Some(d) = dict {
        for key in d.keys() {
            let key: String = key.extract().map_err(|_| {
                PyTypeError::new_err(format!("storage[{u}]: keys must be field names (str)"))
            })?;
            if key != "name" && !STORAGE_FIELDS.iter().any(|f| f.0 == key) {
                let valid: Vec<&str> = STORAGE_FIELDS.iter().map(|f| f.0).collect();
                return Err(PyValueError::new_err(format!(
                    "storage[{u}]: unknown field {key:?}; valid fields are: {}, name",
                    valid.join(", ")
                )));
            }
        }
    }
    let get = |name: &str| -> PyResult<Option<Bound<'_, PyAny>>> {
        match dict {
            Some(d) => d.get_item(name),
            None => match obj.getattr(name) {
                Ok(v) => Ok(Some(v)),
                Err(e) if e.is_instance_of::<pyo3::exceptions::PyAttributeError>(obj.py()) => {
                    Ok(None)
                }
                Err(e) => Err(e),
            },
        }
    };
    let mut unit = Storage::new(0.0, 0.0);
    for &(field, default, optional) in STORAGE_FIELDS {
        let value = match get(field)? {
            Some(v) if !v.is_none() => Some(v.extract::<f64>().map_err(|_| {
                PyTypeError::new_err(format!(
                    "storage[{u}] (sto_{u}): `{field}` must be a number, got {}",
                    v.repr().map(|r| r.to_string()).unwrap_or_default()
                ))
            })?),
            Some(_) if optional => None,
            _ if default.is_some() || optional => default,
            _ => {
                return Err(PyTypeError::new_err(format!(
                    "storage[{u}] (sto_{u}): missing required field `{field}`"
                )))
            }
        };
        unit.set(field, value)
            .map_err(|e| PyValueError::new_err(format!("storage[{u}] (sto_{u}): {e}")))?;
    }
    unit.name = match get("name")? {
        Some(v) if !v.is_none() => Some(v.extract::<String>().map_err(|_| {
            PyTypeError::new_err(format!(
                "storage[{u}] (sto_{u}): `name` must be a str or None"
            ))
        })?),
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
        .map(|(u, item)| unit_from_py(&item?, u))
        .collect()
}

/// The units as a list of `powermarket.Storage`.
pub(crate) fn storage_to_py<'py>(
    py: Python<'py>,
    units: &[Storage],
) -> PyResult<Bound<'py, PyAny>> {
    let class = py.import("powermarket.storage")?.getattr("Storage")?;
    let list = units
        .iter()
        .map(|unit| {
            let kwargs = PyDict::new(py);
            for &(field, _, _) in STORAGE_FIELDS {
                kwargs.set_item(field, unit.get(field))?;
            }
            kwargs.set_item("name", unit.name.clone())?;
            class.call((), Some(&kwargs))
        })
        .collect::<PyResult<Vec<_>>>()?;
    Ok(pyo3::types::PyList::new(py, list)?.into_any())
}

/// Check one storage unit (a ``pm.Storage`` or a dict of its fields) on its
/// own: a ValueError or TypeError naming the field. The reference price
/// and terminal value default from the market's generators, so they are
/// checked only when given.
#[pyfunction]
fn check_storage(unit: &Bound<'_, PyAny>) -> PyResult<()> {
    let unit = unit_from_py(unit, 0)?;
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
