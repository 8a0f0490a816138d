//! The learner service: the register of learners and their ULNs, matching, registration, updates and merges.
