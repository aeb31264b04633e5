//! How a work item that panics is reported, whichever pool catches the panic: the hook
//! keeps each thread's last panic message, and the item's [`OnUnwind`] guard reads it.

use std::cell::RefCell;
use std::sync::Once;

std::thread_local!(static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) });

/// Keeps each thread's last panic message, so that a work item that unwinds can be reported
/// with what it said, whichever pool caught it. The hook it replaces still runs (the
/// default one prints the message to stderr).
pub fn capture_panic_messages() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".into());
            let at = info
                .location()
                .map(|l| format!(" ({l})"))
                .unwrap_or_default();
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{message}{at}")));
            previous(info);
        }));
    });
}

/// The message of this thread's last panic, taken.
pub(super) fn take_last_panic() -> String {
    LAST_PANIC
        .with(|p| p.borrow_mut().take())
        .unwrap_or_else(|| "(message not captured)".into())
}

/// Runs its closure if dropped while the thread unwinds: how a work item reports its own
/// panic, whatever the pool that catches it does next.
pub(super) struct OnUnwind<F: FnMut()>(pub F);

impl<F: FnMut()> Drop for OnUnwind<F> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            (self.0)();
        }
    }
}
