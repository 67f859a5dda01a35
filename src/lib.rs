pub mod smtp;
pub mod tls;
