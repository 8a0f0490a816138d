//! The gateway: the suite's one public endpoint; authenticates, rate-limits, applies deadlines and routes.
