//! indicatif progress bar behind the core `Progress` trait.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use secure_model_core::loader::Progress;

/// A progress bar on stderr; hidden when stderr is not a terminal or when `hidden`.
#[derive(Debug)]
pub(crate) struct Bar(ProgressBar);

impl Bar {
    pub(crate) fn new(message: &'static str, hidden: bool) -> Self {
        let pb = ProgressBar::with_draw_target(
            Some(0),
            if hidden {
                ProgressDrawTarget::hidden()
            } else {
                ProgressDrawTarget::stderr()
            },
        );
        if let Ok(style) = ProgressStyle::with_template(
            "{msg:>10} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        ) {
            pb.set_style(style.progress_chars("=> "));
        }
        pb.set_message(message);
        Self(pb)
    }
}

impl Progress for Bar {
    fn start(&self, total: u64) {
        self.0.set_length(total);
        self.0.set_position(0);
    }
    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }
    fn finish(&self) {
        self.0.finish_and_clear();
    }
}
