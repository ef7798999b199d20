//! Client of tracecast's services. Today: the mailbox protocol
//! ([`MailboxClient`]), a durable local [`Inbox`], and [`drain`], which moves
//! mail from a box into an inbox with the protocol's guarantees: a message
//! is acknowledged only in the request after the one that brought it, and
//! only once it is on disk.

mod buyer;
mod delivery;
mod inbox;
mod licences;
mod mailbox;
mod members;
mod protected;
mod saved;
mod share;

pub use buyer::{
    buy_copy, order_via_site, purchase_path, BuyError, BuyOutcome, Narrator, Silent, SiteOutcome,
    HLS_MEDIA_TYPE,
};
pub use delivery::{
    part_path, ContentOptions, Downloaded, EdgeClient, KioskClient, OriginClient, SHA256_HEADER,
};
pub use inbox::{Inbox, InboxError, LocalEntry};
pub use mailbox::{
    drain, ClientError, CreatedBox, DrainOptions, DrainReport, Fetched, MailboxClient, Message,
    Notice, PostOptions, Posted,
};
pub use protected::{OpenCopy, Opened};
pub use saved::{save_shared, LinkPolicy, SaveError};
pub use share::{download_link, GatewayClient, SendOptions, ServiceClient, Uploaded};
