//! Measurements of the box itself for the host report: CPU, memory, disk and uptime
//! (`system`), the attached filesystems with their durable ids (`storage`), mounted or not, and
//! the block devices that may hold one (`block`).
//!
//! Both read Linux's `/proc` and the filesystems directly instead of running tools, because
//! they run every report cycle and must stay cheap, and a missing file on an odd kernel must
//! mean "zero" or "not reported", never a failed report.

pub mod block;
pub mod storage;
pub mod system;
