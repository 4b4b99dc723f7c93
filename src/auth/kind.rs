//! The kinds of requests with a JSON body. Each is the field that carries
//! the body, the kind a signature covers and a right of its own: one enum,
//! so that a kind added here is matched everywhere a kind decides
//! something, and a typo is a compile error rather than a silent refusal.

/// A kind of request with a JSON body.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BodyKind {
    Pause,
    Resume,
    History,
    Rules,
    Rollback,
}

impl BodyKind {
    /// Every kind, as a request may name them.
    pub const ALL: [BodyKind; 5] = [
        BodyKind::Pause,
        BodyKind::Resume,
        BodyKind::History,
        BodyKind::Rules,
        BodyKind::Rollback,
    ];

    /// The field name, which is also what a signature covers (`kind=`).
    pub fn name(self) -> &'static str {
        match self {
            BodyKind::Pause => "pause",
            BodyKind::Resume => "resume",
            BodyKind::History => "history",
            BodyKind::Rules => "rules",
            BodyKind::Rollback => "rollback",
        }
    }

    /// The kind a field names, if any.
    pub fn from_name(name: &str) -> Option<BodyKind> {
        BodyKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

impl std::fmt::Display for BodyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_found_by_its_name() {
        for kind in BodyKind::ALL {
            assert_eq!(BodyKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(BodyKind::from_name("Pause"), None);
    }
}
