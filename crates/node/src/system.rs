//! System lines: what the node itself writes into a conversation, such as "the
//! session was started again" (issue 14 item 6). Each is a message of kind
//! [`Kind::System`] whose body is a code, never sent anywhere: stored as already read
//! (it counts as nothing unread), placed at the conversation's clock now, and told to
//! clients as [`Event::SystemLine`] so that an open conversation shows it at once.

use communitas_crypto::{Kind, random};
use communitas_store::{Direction, NewMessage, Status};
use communitas_types::{Address, MessageId, Timestamp};

use crate::{Event, Inner};

/// What a system line says; its code is what history and events carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemLine {
    /// The contact's device had lost our session (restored from an old copy,
    /// reinstalled): a new one was started and what it had not acknowledged was sent
    /// again.
    SessionReset,
}

impl SystemLine {
    /// The code stored as the line's body and shown to clients.
    pub fn code(self) -> &'static str {
        match self {
            SystemLine::SessionReset => "session_reset",
        }
    }

    /// The line a stored body names, if this build knows it.
    pub fn from_code(code: &[u8]) -> Option<Self> {
        match code {
            b"session_reset" => Some(SystemLine::SessionReset),
            _ => None,
        }
    }
}

/// Writes `line` into the conversation with `peer`. A failure is logged and left:
/// the line is a courtesy, and nothing else depends on it.
pub(crate) async fn write(inner: &Inner, peer: Address, line: SystemLine) {
    if let Err(e) = try_write(inner, peer, line).await {
        tracing::warn!(error = %e, line = line.code(), "cannot store a system line");
    }
}

async fn try_write(
    inner: &Inner,
    peer: Address,
    line: SystemLine,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // The same line twice in a row says nothing new (several messages sealed again
    // around one reset each find the session lost).
    let newest = inner.store.history(peer, 1, None).await?;
    if newest.last().is_some_and(|m| {
        m.message.kind == Kind::System.to_u8() && m.message.body == line.code().as_bytes()
    }) {
        return Ok(());
    }
    let id = MessageId::from_bytes(random::bytes()?);
    let now = Timestamp::now();
    let place = inner.clocks.read(&inner.store, peer, None, now).await?;
    let message = NewMessage {
        id,
        peer,
        direction: Direction::In,
        kind: Kind::System.to_u8(),
        body: line.code().as_bytes().to_vec(),
        timestamp: now,
        status: Status::Read,
        place,
    };
    inner.store.insert_local(message).await?;
    inner.emit(Event::SystemLine {
        id,
        peer,
        line: line.code(),
        timestamp: now,
        position: place.position,
    });
    Ok(())
}
