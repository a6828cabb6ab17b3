//! A timeline history file (`<TLI>.history`), as PostgreSQL writes one at each promotion.

use super::Lsn;

/// The lines of a timeline history file, `parentTLI <tab> switchpoint <tab> reason`, as
/// `(parent, switch point)`, oldest first; comments and blank lines are skipped.
pub fn history_entries(text: &str) -> Vec<(u32, Lsn)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
        })
        .collect()
}

/// The parent timeline and switch point of the newest switch in a history file (its last
/// entry), or `None` when it has none.
pub fn last_switch(text: &str) -> Option<(u32, Lsn)> {
    history_entries(text).last().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_files_give_their_last_switch() {
        let text = "1\t0/3000060\tno recovery target specified\n\n\
                    2\t0/5000000\tat restore point \"x\"\n";
        assert_eq!(last_switch(text), Some((2, "0/5000000".parse().unwrap())));
        assert_eq!(last_switch("# nothing\n"), None);
    }
}
