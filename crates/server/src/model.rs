//! The server's domain vocabulary: statuses of measurements, of each selected agent's job, of
//! agents, and API token roles. Each has one stable lowercase string used in JSON, SQL and
//! metric labels.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident => $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $var),+ }

        impl $name {
            /// Every value, in a stable order.
            pub const ALL: &'static [$name] = &[$($name::$var),+];

            /// The stable string form.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$var => $s),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($s => Ok($name::$var),)+
                    other => Err(format!(
                        "'{other}' is not one of {}",
                        [$($s),+].join(", ")
                    )),
                }
            }
        }
    };
}

string_enum! {
    /// Where one selected agent's job stands.
    EntryStatus {
        /// Chosen, not yet handed to the agent (it is not connected right now).
        Queued => "queued",
        /// Handed to the agent; no result yet.
        Running => "running",
        /// The agent returned a result (any network outcome, timeouts included).
        Done => "done",
        /// The agent returned a result saying it could not run the measurement (`internal`).
        Failed => "failed",
        /// No result by the deadline: the agent disconnected or did not answer in time.
        AgentLost => "agent_lost",
    }
}

impl EntryStatus {
    /// Whether the entry will not change any more (a late result may still replace
    /// `agent_lost`).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            EntryStatus::Done | EntryStatus::Failed | EntryStatus::AgentLost
        )
    }
}

string_enum! {
    /// Where a measurement stands.
    MeasurementStatus {
        /// Some selected agent has not finished.
        Running => "running",
        /// Every selected agent has a result or a status saying why not.
        Finished => "finished",
    }
}

string_enum! {
    /// Whether an agent is usable.
    AgentStatus {
        /// Connected now.
        Online => "online",
        /// Enrolled, not connected.
        Offline => "offline",
        /// Revoked: its certificate is refused.
        Revoked => "revoked",
    }
}

string_enum! {
    /// What an API token may do. Viewers read; operators also create measurements; admins also
    /// manage agents and enrolment.
    Role {
        /// Everything.
        Admin => "admin",
        /// Read, and create measurements.
        Operator => "operator",
        /// Read only.
        Viewer => "viewer",
    }
}

impl Role {
    /// Whether this role includes the rights of `needed`.
    pub fn allows(self, needed: Role) -> bool {
        let rank = |r: Role| match r {
            Role::Viewer => 0,
            Role::Operator => 1,
            Role::Admin => 2,
        };
        rank(self) >= rank(needed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_match_serde_names_and_parse_back() {
        for s in EntryStatus::ALL {
            assert_eq!(
                serde_json::to_string(s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
            assert_eq!(s.as_str().parse::<EntryStatus>().unwrap(), *s);
        }
        assert!("lost".parse::<EntryStatus>().is_err());
    }

    #[test]
    fn roles_are_ordered() {
        assert!(Role::Admin.allows(Role::Operator));
        assert!(Role::Operator.allows(Role::Viewer));
        assert!(!Role::Viewer.allows(Role::Operator));
    }
}
