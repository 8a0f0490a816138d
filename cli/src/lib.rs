//! The lrs command: runs the suite or one service, and the client commands.
