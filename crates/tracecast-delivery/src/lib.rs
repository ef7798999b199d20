//! The rules of marked delivery (DESIGN.md "001"), with no I/O: quality
//! tiers, edge designation, purchase tickets the origin signs for an edge,
//! expiring download links an edge signs for a buyer, HTTP Range requests,
//! cache eviction, and the messages (delivery reports, bills, pre-position
//! orders) that travel through the mailbox.
//!
//! Everything here takes the time as an argument, so the rules are tested
//! without clocks.

pub mod ab;
pub mod account;
pub mod api;
pub mod contract;
pub mod copy;
pub mod designate;
pub mod evict;
pub mod link;
pub mod messages;
pub mod range;
pub mod region;
pub mod rental;
pub mod site;
pub mod status;
pub mod ticket;
pub mod tier;
pub mod voucher;
pub mod wmt;

pub use account::{AccountKind, CallerKind};
pub use contract::ContractTerms;
pub use copy::{copy_plan, CopyFacts, CopyPlan, CopyRefusal, Destination};
pub use designate::{designate, EdgeView};
pub use link::{LinkError, LinkKey};
pub use messages::{
    Bill, BillLine, DeliveryReport, DiscProgress, PrePosition, RevocationReport, Revoke,
    RevokedCopy, RoamingBill, Statement, StatementLine,
};
pub use range::{ByteRange, RangeError, RangeRequest};
pub use region::{Region, RegionError, RegionMap};
pub use site::{
    DiscOrder, DiscStatus, Fulfilment, Mode, OrderInfo, Sessions, SiteEvent, SiteReport,
};
pub use status::DeliveryStatus;
pub use ticket::{SiteTarget, Ticket, TicketError};
pub use tier::{ContentKind, Tier};
pub use voucher::{CopyVoucher, VoucherError};
pub use wmt::{WmtClaims, WmtError, WmtKey, WmtVerifier};
