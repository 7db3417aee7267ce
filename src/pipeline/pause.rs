//! TEST ONLY: a pause at a named phase, so that fault tests can kill the shipped binary,
//! or break its connections, at an exact step rather than by timing. Compiled into every
//! build, so the binary under test is the one released; without the variable it does
//! nothing.
//!
//! `LETHE_TEST_PAUSE_AT=<phase>` (`planning`, `schema`, `copying`, `indexing`,
//! `checking`, `swapping`, `swapped`): when the run reaches that phase it prints
//! `lethe: paused at <phase>` on stderr and waits for a line (or the end) on its
//! standard input before it goes on.

/// The variable that names the phase to pause at.
pub const PAUSE_VAR: &str = "LETHE_TEST_PAUSE_AT";

/// Waits at `phase` if `LETHE_TEST_PAUSE_AT` names it; returns at once otherwise.
pub(super) async fn at(phase: &str) {
    if std::env::var(PAUSE_VAR).ok().as_deref() != Some(phase) {
        return;
    }
    eprintln!("lethe: paused at {phase} ({PAUSE_VAR}); a line on stdin resumes");
    let resumed = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)
    })
    .await;
    eprintln!(
        "lethe: resumed at {phase}{}",
        if matches!(resumed, Ok(Ok(_))) {
            ""
        } else {
            " (stdin unreadable)"
        }
    );
}
