//! `rfc3339_seconds`: a batch's timestamps, checked by the decoder's fast timestamp check and
//! read as Python reads them.
//!
//! A timestamp passes when it has exactly the layout of the decoder's `_RFC3339` pattern,
//! `YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|+HH:MM|-HH:MM)` with every field in range (year 0001-9999,
//! hour 00-23, minute and second 00-59, offset hour 00-23), and a day that exists in its month.
//! Its value is `datetime.fromisoformat(text).timestamp()`: the fraction truncated to
//! microseconds, the offset subtracted, and the microseconds since the epoch divided by 10^6
//! (exactly, as Python divides integers, while they fit in 53 bits).

use pyo3::prelude::*;
use pyo3::types::{PyList, PyString};

/// Microseconds since the epoch, or None if `text` does not pass the check.
fn epoch_micros(text: &[u8]) -> Option<i64> {
    let digit = |i: usize| -> Option<i64> {
        let b = *text.get(i)?;
        b.is_ascii_digit().then(|| i64::from(b - b'0'))
    };
    let number = |from: usize, len: usize| -> Option<i64> {
        (from..from + len).try_fold(0, |acc, i| Some(acc * 10 + digit(i)?))
    };
    let at = |i: usize, c: u8| text.get(i) == Some(&c);
    if !(at(4, b'-') && at(7, b'-') && at(10, b'T') && at(13, b':') && at(16, b':')) {
        return None;
    }
    let (year, month, day) = (number(0, 4)?, number(5, 2)?, number(8, 2)?);
    let (hour, minute, second) = (number(11, 2)?, number(14, 2)?, number(17, 2)?);
    if year == 0 || !(1..=12).contains(&month) || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    if day < 1 || day > days_in_month(year, month) {
        return None;
    }
    // the fraction: 1 to 9 digits, truncated to microseconds
    let mut i = 19;
    let mut micros = 0;
    if at(i, b'.') {
        let digits = text[i + 1..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if !(1..=9).contains(&digits) {
            return None;
        }
        for k in 0..6 {
            micros = micros * 10 + if k < digits { digit(i + 1 + k)? } else { 0 };
        }
        i += 1 + digits;
    }
    let offset_minutes = match text.get(i..)? {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), _, _, b':', _, _] => {
            let (h, m) = (number(i + 1, 2)?, number(i + 4, 2)?);
            if h > 23 || m > 59 {
                return None;
            }
            if *sign == b'+' {
                h * 60 + m
            } else {
                -(h * 60 + m)
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset_minutes * 60;
    Some(seconds * 1_000_000 + micros)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Epoch seconds of every timestamp in `times`, or None if any does not pass the check or
/// lies too far from 1970 to be divided exactly (the caller then reads them one by one).
#[pyfunction]
pub fn rfc3339_seconds(times: &Bound<'_, PyList>) -> PyResult<Option<Vec<f64>>> {
    let mut seconds = Vec::with_capacity(times.len());
    for item in times.iter() {
        let text = item.cast::<PyString>()?;
        let Ok(text) = text.to_str() else {
            return Ok(None);
        };
        match epoch_seconds(text.as_bytes()) {
            Some(s) => seconds.push(s),
            None => return Ok(None),
        }
    }
    Ok(Some(seconds))
}

/// `text`'s epoch seconds as Python reads them, or None if it does not pass the check or lies
/// too far from 1970 for its microseconds to be divided exactly.
pub(crate) fn epoch_seconds(text: &[u8]) -> Option<f64> {
    const EXACT: i64 = 1 << 53;
    epoch_micros(text)
        .filter(|us| us.abs() < EXACT)
        .map(|us| us as f64 / 1e6)
}
