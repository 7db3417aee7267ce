//! The page's HTML, written with `maud`: every value interpolated with `(...)` is
//! HTML-escaped by the macro, and raw HTML would need an explicit `PreEscaped`, which
//! this file never uses; so a target name, a trigger or an error text can never become
//! markup. Templates are checked by the compiler with the rest of the code: no template
//! files, no build step.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use maud::{DOCTYPE, Markup, html};

use super::facts::{Chrome, Live, RunFacts, ScheduleView, TargetView};
use super::format;

/// The CSS class of a status badge.
fn badge(status: &str) -> &'static str {
    match status {
        "succeeded" => "badge ok",
        "failed" => "badge bad",
        "running" => "badge run",
        "cancelled" => "badge warn",
        _ => "badge",
    }
}

/// A time in UTC, with the zone's time beneath when a zone applies.
fn when(at: Option<DateTime<Utc>>, zone: Option<Tz>) -> Markup {
    html! {
        @if let Some(at) = at {
            (format::utc(at))
            @if let Some(local) = format::zoned(at, zone) {
                div.muted { (local) }
            }
        } @else {
            span.muted { "—" }
        }
    }
}

/// A hidden CSRF field and a button posting to `action`.
fn button(chrome: &Chrome, action: &str, label: &str, class: &str) -> Markup {
    html! {
        form.inline method="post" action={ (chrome.base) (action) } {
            input type="hidden" name="csrf" value=(chrome.csrf);
            button type="submit" class=(class) { (label) }
        }
    }
}

/// The frame around every page.
fn layout(chrome: &Chrome, title: &str, main: Markup) -> String {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if chrome.reload {
                    noscript { meta http-equiv="refresh" content="10"; }
                }
                title { (title) " · lethe" }
                link rel="stylesheet" href={ (chrome.base) "static/lethe.css" };
                script src={ (chrome.base) "static/live.js" } defer {}
            }
            body {
                header.bar {
                    a.brand href={ (chrome.base) } { "lethe" }
                    span.sub { "status" }
                    span.spacer {}
                    @if let Some((id, can)) = &chrome.who {
                        span.who { "signed in as " b { (id) } " · " (can) }
                        (button(chrome, "logout", "Sign out", "quiet"))
                    } @else if chrome.open {
                        span.who { "no API tokens: open to local users" }
                    }
                }
                main { (main) }
                footer {
                    "Times in UTC, and in the schedule's zone where one applies. Sizes in decimal units (1 MB = 10"
                    sup { "6" } " bytes)."
                }
            }
        }
    }
    .into_string()
}

/// The live counters of a run under way, which `live.js` updates.
fn live_block(chrome: &Chrome, live: &Live, status: &str) -> Markup {
    html! {
        span.live data-live-run=(live.id) data-json={ (chrome.base) "v1/runs/" (live.id) } {
            span data-field="status" class=(badge(status)) { (status) }
            " "
            span data-field="phase" { (live.phase) }
            " · tables "
            span data-field="tables" { (live.tables_done) "/" (live.tables_total) }
            " · "
            span data-field="rows" { (format::count(live.rows)) } " rows · "
            span data-field="rate" { (format::rate(live.bytes, live.seconds)) }
        }
    }
}

/// `GET /`.
pub(super) fn index(
    chrome: &Chrome,
    targets: &[TargetView],
    live: &[RunFacts],
    schedules: &[ScheduleView],
    now: DateTime<Utc>,
) -> String {
    let main = html! {
        h1 { "Targets" }
        @if targets.is_empty() {
            p.muted { "This token may see no target." }
        } @else {
            table.grid {
                thead { tr {
                    th { "Target" } th { "Last run" } th { "When" } th { "Duration" }
                    th.num { "Rows" } th.num { "Size" } th { "Rules" } th {}
                } }
                tbody {
                    @for target in targets {
                        tr id={ "target-" (target.name) } {
                            td { b { (target.name) } div.muted { (target.engine) } }
                            @if let Some(last) = &target.last {
                                td {
                                    a href={ (chrome.base) (last.link) } {
                                        span class=(badge(last.status)) data-role="last-status" { (last.status) }
                                    }
                                    div.muted { (last.trigger) }
                                }
                                td { (when(last.ended.or(last.started), last.zone)) }
                                td { @if let Some(d) = last.duration() { (format::duration(d)) } }
                                td.num { @if let Some(rows) = last.rows { (format::count(rows)) } }
                                td.num { @if let Some(bytes) = last.bytes { (format::bytes(bytes)) } }
                                td { @if let Some(rules) = &last.rules {
                                    code title=(rules) { (format::short_hash(rules)) }
                                } }
                            } @else {
                                td colspan="6" { span.muted { "never refreshed (no run recorded)" } }
                            }
                            td.actions {
                                @if let Some(busy) = &target.busy {
                                    a href={ (chrome.base) (busy) } { "refreshing…" }
                                } @else if target.may_refresh {
                                    (button(chrome, &format!("targets/{}/refresh", target.name), "Refresh now", "primary"))
                                }
                                @if target.may_rollback && target.busy.is_none() {
                                    details.rollback {
                                        summary { "Roll back…" }
                                        (button(chrome, &format!("targets/{}/rollback", target.name), "Swap the previous copy back in", "danger"))
                                    }
                                }
                            }
                        }
                        @if let Some(error) = target.last.as_ref().and_then(|l| l.error.as_deref()) {
                            tr.error-row { td {} td colspan="7" { (format::first_line(error)) } }
                        }
                    }
                }
            }
        }
        h2 { "In progress" }
        @if live.is_empty() {
            p.muted { "No run in progress." }
        } @else {
            ul.runs {
                @for run in live {
                    li {
                        b { (run.target) } " "
                        a href={ (chrome.base) (run.link) } { code { (run.id) } }
                        " "
                        @if let Some(counters) = &run.live { (live_block(chrome, counters, run.status)) }
                        span.muted { " · attempt " (run.attempt.unwrap_or(0)) " · " (run.trigger) }
                        @if run.may_cancel {
                            " " (button(chrome, &format!("runs/{}/cancel", run.id), "Cancel", "quiet"))
                        }
                    }
                }
            }
        }
        h2 { "Schedules" }
        @if schedules.is_empty() {
            p.muted { "No schedule (schedules/*.toml beside lethe.toml)." }
        } @else {
            table.grid {
                thead { tr { th { "Schedule" } th { "Cron" } th { "Zone" } th { "Targets" } th { "Next fire times" } } }
                tbody {
                    @for schedule in schedules {
                        tr {
                            td { b { (schedule.name) } @if !schedule.catch_up { div.muted { "no catch-up" } } }
                            td { code { (schedule.cron) } }
                            td { (schedule.zone.name()) }
                            td { (schedule.targets.join(", ")) }
                            td {
                                @for at in &schedule.next {
                                    div {
                                        @if let Some(local) = format::zoned(*at, Some(schedule.zone)) {
                                            (local) span.muted { " · " (format::utc(*at)) }
                                        } @else {
                                            (format::utc(*at))
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        p.muted.small { "Shown " (format::utc(now)) "." }
    };
    layout(chrome, "Status", main)
}

/// `GET /runs/{id}`.
pub(super) fn run(chrome: &Chrome, run: &RunFacts) -> String {
    let main = html! {
        p { a href=(chrome.base) { "← all targets" } }
        h1 { "Run " code { (run.id) } }
        dl.facts {
            dt { "Target" } dd { b { (run.target) } }
            dt { "Status" } dd {
                @if let Some(live) = &run.live {
                    (live_block(chrome, live, run.status))
                } @else {
                    span class=(badge(run.status)) data-role="status" { (run.status) }
                }
                @if run.may_cancel {
                    " " (button(chrome, &format!("runs/{}/cancel", run.id), "Cancel", "quiet"))
                }
            }
            dt { "Trigger" } dd { (run.trigger) }
            @if let Some(schedule) = &run.schedule { dt { "Schedule" } dd { (schedule) } }
            @if let Some(profile) = &run.profile { dt { "Profile" } dd { (profile) } }
            dt { "Attempts" } dd { @if let Some(n) = run.attempt { (n) } @else { span.muted { "not recorded" } } }
            @if run.queued.is_some() { dt { "Queued" } dd { (when(run.queued, run.zone)) } }
            dt { "Started" } dd { (when(run.started, run.zone)) }
            dt { "Ended" } dd { (when(run.ended, run.zone)) }
            dt { "Duration" } dd { @if let Some(d) = run.duration() { (format::duration(d)) } @else { span.muted { "—" } } }
            @if let Some(rows) = run.rows { dt { "Rows" } dd { (format::count(rows)) } }
            @if let Some(bytes) = run.bytes {
                dt { "Size" } dd {
                    (format::bytes(bytes))
                    @if let Some(d) = run.duration() { span.muted { " · " (format::rate(bytes, d.as_secs_f64())) } }
                }
            }
            dt { "Rules fingerprint" } dd { @if let Some(rules) = &run.rules { code { (rules) } } @else { span.muted { "unknown" } } }
            @if let Some(n) = run.history_id { dt { "Run history" } dd { a href={ (chrome.base) "runs/" (n) } { "#" (n) } " (" code { "lethe runs" } ")" } }
        }
        @if let Some(error) = &run.error {
            h2 { "Error" }
            pre.error { (error) }
        }
        h2 { "Tables" }
        @if run.tables.is_empty() {
            p.muted { "No table figures: they are kept for runs that swapped their copy in." }
        } @else {
            table.grid {
                thead { tr { th { "Table" } th.num { "Rows" } th.num { "Size" } th.num { "Seconds" } } }
                tbody {
                    @for table in &run.tables {
                        tr {
                            td { code { (table.name) } }
                            td.num { (format::count(table.rows)) }
                            td.num { (format::bytes(table.bytes)) }
                            td.num { @if let Some(s) = table.seconds { (format!("{s:.1}")) } @else { span.muted { "—" } } }
                        }
                    }
                }
            }
        }
    };
    layout(chrome, &format!("Run {}", run.id), main)
}

/// The login form, with `note` saying why it is shown again.
pub(super) fn login(
    base: &'static str,
    status: StatusCode,
    note: Option<&str>,
    csrf: &str,
) -> String {
    let chrome = Chrome {
        base,
        who: None,
        csrf: String::new(),
        open: false,
        reload: false,
    };
    let main = html! {
        h1 { "Sign in" }
        @if status == StatusCode::UNAUTHORIZED && note.is_none() {
            p.notice { b { "401 Unauthorized." } " This page needs an API token (one of LETHE_API_TOKENS)." }
        }
        @if let Some(note) = note { p.notice { (note) } }
        form.login method="post" action={ (base) "login" } {
            input type="hidden" name="csrf" value=(csrf);
            label for="token" { "API token" }
            input #token type="password" name="token" autocomplete="current-password" required autofocus;
            button.primary type="submit" { "Sign in" }
        }
        p.muted.small {
            "The browser keeps a session cookie for this daemon (until you sign out, the browser closes, or the daemon restarts); the token itself is not stored in it."
        }
    };
    layout(&chrome, "Sign in", main)
}

/// A refused or failed action, with its status.
pub(super) fn problem(chrome: &Chrome, status: StatusCode, message: &str) -> String {
    let main = html! {
        p { a href=(chrome.base) { "← all targets" } }
        h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
        p.notice { (message) }
    };
    layout(chrome, &status.as_u16().to_string(), main)
}

/// After a rollback.
pub(super) fn rolled_back(chrome: &Chrome, target: &str, schemas: &[String]) -> String {
    let main = html! {
        p { a href=(chrome.base) { "← all targets" } }
        h1 { "Rolled back " (target) }
        p { "The copy from before the last refresh is live again in " (schemas.join(", ")) "; the copy it replaced is now the previous one (rolling back again swaps it back)." }
    };
    layout(chrome, "Rolled back", main)
}
