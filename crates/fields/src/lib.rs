//! The learner's identifiers and demographic fields and their rules: ULN, UPN, UCI, names, postcodes, dates and codes.
