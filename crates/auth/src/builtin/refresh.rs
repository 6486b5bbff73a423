//! Refresh-token rotation and reuse detection, as pure decisions over stored state.
//!
//! Every refresh token is used once: a refresh marks it used and issues a successor. If a used
//! token comes back, either the client retried a lost response or someone copied the token; the
//! two cannot be told apart, so the session ends (OAuth 2.0 Security BCP §4.14.2). The caller
//! loads the token row `FOR UPDATE`, asks [`decide`], and writes what it says in the same
//! transaction, so two concurrent refreshes of one token cannot both rotate it.

use time::{Duration, OffsetDateTime};

/// What the store knows about a presented refresh token and its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshState {
    /// When this token stops being usable.
    pub token_expires_at: OffsetDateTime,
    /// When it was rotated (used), if it was.
    pub token_used_at: Option<OffsetDateTime>,
    /// When the session reaches its absolute end.
    pub session_expires_at: OffsetDateTime,
    /// When the session was ended (logout, reuse, block…), if it was.
    pub session_ended_at: Option<OffsetDateTime>,
}

/// The outcome of presenting a refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshDecision {
    /// Valid: mark it used, issue a successor expiring at `next_expires_at`.
    Rotate {
        /// Expiry of the successor token: `now + ttl`, never past the session's end.
        next_expires_at: OffsetDateTime,
    },
    /// Already rotated and presented again: end the session, refuse
    /// ([`crate::Error::RefreshTokenReused`]).
    Reused,
    /// The session is over (ended, or past its absolute lifetime): refuse
    /// ([`crate::Error::TokenRevoked`]).
    SessionEnded,
    /// The token has expired: refuse ([`crate::Error::TokenExpired`]).
    Expired,
}

/// Decides what presenting a refresh token with this stored `state` at `now` does. `ttl` is the
/// lifetime of a refresh token.
pub fn decide(state: &RefreshState, now: OffsetDateTime, ttl: Duration) -> RefreshDecision {
    if state.session_ended_at.is_some() {
        return RefreshDecision::SessionEnded;
    }
    if state.token_used_at.is_some() {
        return RefreshDecision::Reused;
    }
    if state.session_expires_at <= now {
        return RefreshDecision::SessionEnded;
    }
    if state.token_expires_at <= now {
        return RefreshDecision::Expired;
    }
    RefreshDecision::Rotate {
        next_expires_at: next_expiry(now, ttl, state.session_expires_at),
    }
}

/// Expiry of a new refresh token: `now + ttl`, capped at the session's absolute end.
pub fn next_expiry(
    now: OffsetDateTime,
    ttl: Duration,
    session_expires_at: OffsetDateTime,
) -> OffsetDateTime {
    (now + ttl).min(session_expires_at)
}

/// Whole seconds from `now` until `at`, zero if past: the `*_expires_in` of a response.
pub fn seconds_until(at: OffsetDateTime, now: OffsetDateTime) -> u64 {
    u64::try_from((at - now).whole_seconds()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_764_000_000 + secs).unwrap()
    }

    fn fresh() -> RefreshState {
        RefreshState {
            token_expires_at: t(3600),
            token_used_at: None,
            session_expires_at: t(86_400),
            session_ended_at: None,
        }
    }

    const TTL: Duration = Duration::hours(1);

    #[test]
    fn a_fresh_token_rotates_with_a_sliding_expiry() {
        assert_eq!(
            decide(&fresh(), t(60), TTL),
            RefreshDecision::Rotate {
                next_expires_at: t(3660)
            }
        );
    }

    #[test]
    fn the_successor_never_outlives_the_session() {
        let state = RefreshState {
            session_expires_at: t(1000),
            ..fresh()
        };
        assert_eq!(
            decide(&state, t(60), TTL),
            RefreshDecision::Rotate {
                next_expires_at: t(1000)
            }
        );
    }

    #[test]
    fn a_used_token_presented_again_is_reuse() {
        let state = RefreshState {
            token_used_at: Some(t(10)),
            ..fresh()
        };
        assert_eq!(decide(&state, t(20), TTL), RefreshDecision::Reused);
        // Even once expired: reuse of a stolen token is still worth ending the session for.
        assert_eq!(decide(&state, t(7200), TTL), RefreshDecision::Reused);
    }

    #[test]
    fn an_ended_session_refuses_every_token_of_it() {
        let ended = RefreshState {
            session_ended_at: Some(t(5)),
            ..fresh()
        };
        assert_eq!(decide(&ended, t(10), TTL), RefreshDecision::SessionEnded);
        let ended_and_used = RefreshState {
            token_used_at: Some(t(1)),
            ..ended
        };
        assert_eq!(
            decide(&ended_and_used, t(10), TTL),
            RefreshDecision::SessionEnded
        );
        let past_absolute_end = RefreshState {
            session_expires_at: t(100),
            ..fresh()
        };
        assert_eq!(
            decide(&past_absolute_end, t(100), TTL),
            RefreshDecision::SessionEnded
        );
    }

    #[test]
    fn an_expired_token_is_expired() {
        assert_eq!(decide(&fresh(), t(3600), TTL), RefreshDecision::Expired);
    }

    #[test]
    fn seconds_until_never_goes_negative() {
        assert_eq!(seconds_until(t(300), t(0)), 300);
        assert_eq!(seconds_until(t(0), t(300)), 0);
    }
}
