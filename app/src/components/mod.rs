//! Views every page shares: the frame around a signed-in page and the line
//! that answers an action. A page module holds only what is its own.

mod action_result;
mod copy_button;
mod page;

pub use action_result::{action_result, Outcome, ResultIds};
pub use copy_button::CopyButton;
pub use page::{page_error, page_shell, TopBar};
