//! Integration tests of the mark engine: payload, key, audio round trips,
//! attacks done in code, and the false-alarm rule.

mod audio;
mod false_alarm;
mod image;
mod payload;
