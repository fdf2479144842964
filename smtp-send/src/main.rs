//! `smtp-send`: the command-line sender.
//!
//! Placeholder member: the sender lands with the issue "smtp-send: the command-line sender". Until then it
//! says so and exits with EX_UNAVAILABLE, so that no script mistakes it for a working sender.

fn main() {
    eprintln!("smtp-send is not built yet: see the issue \"smtp-send: the command-line sender\"");
    std::process::exit(69);
}
