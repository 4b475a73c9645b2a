//! Authenticators this node has authenticated before: their holder, public key and PIN state, so
//! that a device's next request is authenticated with one database statement — spend the token's
//! one-time id if the device is still active with that key and PIN state — instead of a read and
//! a write. The cache never authorises anything by itself: that statement checks the device row,
//! and when it spends nothing the full check runs and says why.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Entries kept at most (all are dropped when full; they are re-read on next use).
const CAPACITY: usize = 10_000;
/// A device's use is recorded (`last_used_at`) at most this often by one node.
const TOUCH_EVERY: Duration = Duration::from_secs(30);

/// What a node knows of an authenticated device.
#[derive(Debug, Clone)]
pub(crate) struct KnownDevice {
    /// The holder's user id.
    pub user_id: String,
    /// The device's public key (SEC1).
    pub public_key: Vec<u8>,
    /// Whether the device had a PIN.
    pub has_pin: bool,
}

#[derive(Debug)]
struct Entry {
    device: KnownDevice,
    touched: Option<Instant>,
}

/// The cache (one per node).
#[derive(Clone, Default)]
pub(crate) struct DeviceKeys {
    entries: Arc<Mutex<HashMap<String, Entry>>>,
}

impl DeviceKeys {
    /// The device `id` as last authenticated on this node.
    pub fn get(&self, id: &str) -> Option<KnownDevice> {
        self.entries.lock().ok()?.get(id).map(|e| e.device.clone())
    }

    /// Remember a device after its full authentication.
    pub fn put(&self, id: &str, device: KnownDevice) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= CAPACITY && !entries.contains_key(id) {
                entries.clear();
            }
            let touched = entries.get(id).and_then(|e| e.touched);
            entries.insert(id.to_string(), Entry { device, touched });
        }
    }

    /// Forget a device (its row no longer matches, or it was deleted).
    pub fn forget(&self, id: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(id);
        }
    }

    /// Whether to record a use of device `id` now: true when this node has not recorded one in
    /// the last 30 seconds (and notes that it does now).
    pub fn should_touch(&self, id: &str) -> bool {
        let Ok(mut entries) = self.entries.lock() else { return true };
        match entries.get_mut(id) {
            Some(e) if e.touched.is_some_and(|t| t.elapsed() < TOUCH_EVERY) => false,
            Some(e) => {
                e.touched = Some(Instant::now());
                true
            }
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> KnownDevice {
        KnownDevice { user_id: "u".into(), public_key: vec![4, 1, 2], has_pin: false }
    }

    #[test]
    fn remembers_forgets_and_touches_at_most_every_30_seconds() {
        let keys = DeviceKeys::default();
        assert!(keys.get("d").is_none());
        assert!(keys.should_touch("d"), "an unknown device is always touched");
        keys.put("d", known());
        assert_eq!(keys.get("d").map(|d| d.public_key), Some(vec![4, 1, 2]));
        assert!(keys.should_touch("d"));
        assert!(!keys.should_touch("d"), "a second use within 30 s is not recorded again");
        keys.put("d", KnownDevice { has_pin: true, ..known() });
        assert!(!keys.should_touch("d"), "re-authenticating keeps the last touch");
        keys.forget("d");
        assert!(keys.get("d").is_none());
        assert!(keys.should_touch("d"));
    }
}
