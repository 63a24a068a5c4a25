//! One writer per audit file: an exclusive advisory lock (flock(2)) on the open file, held
//! until the file is closed. Two processes appending to one file would each continue the
//! chain from the same row and break it for good.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Takes the exclusive lock on `file` without waiting: `Ok(false)` when another open file
/// (in this or another process) holds it. flock(2) locks are advisory (only other lockers
/// see them) and may not reach across NFS.
pub(super) fn try_lock(file: &File) -> io::Result<bool> {
    loop {
        // SAFETY: flock(2) on a descriptor `file` keeps open for the call's duration.
        let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if r == 0 {
            return Ok(true);
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EWOULDBLOCK) => return Ok(false),
            Some(libc::EINTR) => continue,
            _ => return Err(e),
        }
    }
}
