//! Adding, registering, listing and deleting authenticator devices.
