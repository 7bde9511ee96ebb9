//! Task ids: `t_` + 8 lowercase hex characters (4 random bytes), as the
//! reference generates them.

use rand::RngExt;

/// A fresh random task id.
pub fn new_task_id() -> String {
    let bytes: [u8; 4] = rand::rng().random();
    format!(
        "t_{:02x}{:02x}{:02x}{:02x}",
        bytes[0], bytes[1], bytes[2], bytes[3]
    )
}

/// True for strings shaped like a task id (`t_` followed by hex).
pub fn looks_like_task_id(s: &str) -> bool {
    s.len() > 2 && s.starts_with("t_") && s[2..].bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_reference_shape() {
        for _ in 0..100 {
            let id = new_task_id();
            assert_eq!(id.len(), 10);
            assert!(looks_like_task_id(&id));
            assert_eq!(id, id.to_lowercase());
        }
        assert!(!looks_like_task_id("t_"));
        assert!(!looks_like_task_id("x_12345678"));
        assert!(!looks_like_task_id("t_zz"));
    }
}
