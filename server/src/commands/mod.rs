//! The command-line tools besides `serve`, each on the console's data
//! directory through `console::offline_engine`.

pub mod audit;
pub mod declare;
pub mod env;
pub mod token;
