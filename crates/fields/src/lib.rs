//! The learner's identifiers and demographic fields and their rules: ULN, UPN, UCI, names,
//! postcodes, dates and codes, and the clock every date rule reads. No I/O.
//!
//! Used by the learner service, the batch file validator and the CLI, so that a field means
//! the same everywhere:
//!
//! - [`uln`]: the Unique Learner Number, its check digit and allocation;
//! - [`upn`] and [`uci`]: the pupil and candidate identifiers of batch template 3A;
//! - [`postcode`], [`name`], [`email`], [`date`], [`codes`], [`text`]: one field each;
//! - [`learner`]: the one validation of a whole learner's details, reporting every fault with
//!   the kind that decides its batch return code, and the five matching keys.
//!
//! Identifiers, codes and dates are read exactly as given; names and free text are trimmed;
//! postcodes follow their own pattern. Error messages never repeat a learner's names, date of
//! birth or postcode, so they are safe to log.

#![forbid(unsafe_code)]

pub mod codes;
pub mod date;
pub mod email;
pub mod learner;
pub mod name;
pub mod postcode;
pub mod text;
pub mod uci;
pub mod uln;
pub mod upn;

pub use codes::{
    AbilityToShare, CodeError, Gender, PrivacyNoticeSeen, Verification, VerificationType,
};
pub use date::{Clock, DateError, FixedClock, SystemClock, age_on, parse_date};
pub use email::{Email, EmailError};
pub use learner::{MatchKeys, RawLearner, ValidLearner, Violation, ViolationKind};
pub use name::{Name, NameError, normalise_name, phonetic_key, similarity};
pub use postcode::{Postcode, PostcodeError};
pub use text::{ScottishCandidateNumber, ScottishCandidateNumberError, TextError};
pub use uci::{Uci, UciError};
pub use uln::{Uln, UlnError};
pub use upn::{Upn, UpnError, UpnKind};
