//! The caller's side of every tracecast role: the buyer's protocol
//! (designation, a marked copy, resuming, orders through homes and kiosks),
//! the mailbox protocol ([`MailboxClient`], a durable local [`Inbox`] and
//! [`drain`], which acknowledges a message only in the request after the one
//! that brought it, and only once it is on disk), fetching and saving what
//! devices shared ([`fetch`]), a device's set-up and sharing ([`device`]),
//! licences and protected copies, and the clients of edges, kiosks,
//! gateways and the service server.

mod buyer;
pub mod cdn;
mod delivery;
pub mod device;
pub mod fetch;
mod inbox;
mod licences;
mod mailbox;
mod members;
mod protected;
mod saved;
mod share;

pub use buyer::{
    buy_copy, buy_copy_as, buy_via_cdn, order_via_site, purchase_path, BuyError, BuyOutcome,
    Narrator, Silent, SiteOutcome, HLS_MEDIA_TYPE,
};
pub use delivery::{
    hash_file, part_path, ContentOptions, Downloaded, EarlyDelivery, EdgeClient, KioskClient,
    OriginClient, SHA256_HEADER,
};
pub use inbox::{Inbox, InboxError, LocalEntry};
pub use licences::{ConvertedFile, ConvertedFiles, PackageItemOutcome, PackageReceived};
pub use mailbox::{
    drain, ClientError, CreatedBox, DrainOptions, DrainReport, Fetched, MailboxClient, Message,
    Notice, PostOptions, Posted,
};
pub use protected::{OpenCopy, Opened};
pub use saved::{save_shared, LinkPolicy, SaveError};
pub use share::{download_link, GatewayClient, SendOptions, ServiceClient, Uploaded};
