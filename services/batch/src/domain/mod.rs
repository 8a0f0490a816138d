//! The batch rules, without I/O: file layouts and names ([`layout`]), the streaming reader and
//! validator ([`parser`]), the checks of one record ([`record`]), outcomes and return codes
//! ([`outcome`]), the output file ([`output`]) and job states ([`job`]).

pub mod job;
pub mod layout;
pub mod outcome;
pub mod output;
pub mod parser;
pub mod record;
