//! The batch service: LRB learner files and AO verification files, validated, processed and answered.
