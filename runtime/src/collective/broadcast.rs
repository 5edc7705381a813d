//! A broadcast from rank 0 built from the sum every [`Communicator`] has:
//! rank 0 contributes its data and the other ranks zeros, so the sum is
//! rank 0's data, exactly (each element an integer below 2^16, two bytes of
//! the message, exact in f32 whatever the order of the additions).

use super::{CollectiveError, Communicator};

/// The most bytes one [`Communicator::broadcast`] carries (16 MiB).
pub const MAX_BROADCAST: usize = 1 << 24;

/// Marks a broadcast's header, so that a broadcast paired with another
/// rank's reduction of model data is caught rather than misread.
const MAGIC: u16 = 0x5EA5;

/// The header: the magic, then the length in three 16-bit words.
const HEADER: usize = 4;

/// See [`Communicator::broadcast`].
pub(super) fn broadcast<C: Communicator + ?Sized>(
    comm: &C,
    message: &[u8],
) -> Result<Vec<u8>, CollectiveError> {
    let root = comm.rank() == 0;
    let mut header = vec![0f32; HEADER];
    if root {
        let len = message.len() as u64;
        header[0] = f32::from(MAGIC);
        for (k, h) in header[1..].iter_mut().enumerate() {
            *h = ((len >> (16 * k)) & 0xffff) as f32;
        }
    }
    let header = words(&comm.start_sum(header)?.wait()?, "header")?;
    if header.len() != HEADER || header[0] != MAGIC {
        return Err(CollectiveError::Malformed(
            "the header does not start a broadcast".into(),
        ));
    }
    let len = header[1..]
        .iter()
        .enumerate()
        .fold(0u64, |n, (k, &w)| n | u64::from(w) << (16 * k));
    if len > MAX_BROADCAST as u64 {
        return Err(CollectiveError::Oversized {
            len,
            max: MAX_BROADCAST,
        });
    }
    let len = len as usize;
    let payload = if root {
        message
            .chunks(2)
            .map(|pair| f32::from(u16::from_le_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
            .collect()
    } else {
        vec![0f32; len.div_ceil(2)]
    };
    let words = words(&comm.start_sum(payload)?.wait()?, "payload")?;
    if words.len() != len.div_ceil(2) {
        return Err(CollectiveError::Malformed(format!(
            "{} payload elements for {len} bytes",
            words.len()
        )));
    }
    let mut bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    bytes.truncate(len);
    Ok(bytes)
}

/// The 16-bit words a sum holds; refuses an element that is not one.
fn words(sum: &[f32], part: &str) -> Result<Vec<u16>, CollectiveError> {
    sum.iter()
        .map(|&x| {
            let word = x as u16;
            if f32::from(word) == x {
                Ok(word)
            } else {
                Err(CollectiveError::Malformed(format!(
                    "the {part} holds {x}, not a 16-bit word"
                )))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::collective::LocalGroup;

    /// Runs `each(rank, group)` on a thread per rank of a group of `size`.
    fn on_ranks<T: Send + 'static>(
        size: usize,
        each: impl Fn(LocalGroup) -> T + Send + Sync + 'static,
    ) -> Vec<T> {
        let each = std::sync::Arc::new(each);
        let threads: Vec<_> = LocalGroup::new(size, Duration::from_secs(10))
            .into_iter()
            .map(|g| {
                let each = std::sync::Arc::clone(&each);
                std::thread::spawn(move || each(g))
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    }

    #[test]
    fn every_rank_gets_rank_zeros_message() {
        for len in [0usize, 1, 2, 3, 1000, 65_537] {
            let got = on_ranks(3, move |g| {
                // Other ranks' messages are ignored.
                let mine: Vec<u8> = (0..len + g.rank())
                    .map(|i| (i * 7 + g.rank()) as u8)
                    .collect();
                let first = g.broadcast(&mine).unwrap();
                // The group stays in step: a second broadcast and a sum.
                let second = g.broadcast(&[g.rank() as u8; 5]).unwrap();
                let sum = g.start_sum(vec![1.0]).unwrap().wait().unwrap();
                (first, second, sum)
            });
            let want: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            for (first, second, sum) in got {
                assert_eq!(first, want, "length {len}");
                assert_eq!(second, [0u8; 5]);
                assert_eq!(sum, [3.0]);
            }
        }
    }

    #[test]
    fn an_oversized_message_is_refused_on_every_rank() {
        let got = on_ranks(2, |g| {
            let big = vec![1u8; if g.rank() == 0 { MAX_BROADCAST + 1 } else { 0 }];
            let refused = g.broadcast(&big);
            // No payload round was started: the group goes on.
            (refused, g.broadcast(b"ok"))
        });
        for (refused, after) in got {
            assert_eq!(
                refused,
                Err(CollectiveError::Oversized {
                    len: MAX_BROADCAST as u64 + 1,
                    max: MAX_BROADCAST
                })
            );
            assert_eq!(after.unwrap(), b"ok");
        }
    }

    #[test]
    fn a_broadcast_met_by_a_reduction_is_malformed() {
        // Rank 1 reduces model data where rank 0 broadcasts.
        let got = on_ranks(2, |g| {
            if g.rank() == 0 {
                g.broadcast(b"step").map(|_| ())
            } else {
                g.start_sum(vec![0.5, 1.0, 2.0, 3.0])
                    .unwrap()
                    .wait()
                    .map(|_| ())
            }
        });
        match &got[0] {
            Err(CollectiveError::Malformed(why)) => assert!(why.contains("16-bit"), "{why}"),
            other => panic!("{other:?}"),
        }
        let got = on_ranks(2, |g| {
            if g.rank() == 0 {
                g.broadcast(b"step").map(|_| ())
            } else {
                g.start_sum(vec![1.0; HEADER]).unwrap().wait().map(|_| ())
            }
        });
        match &got[0] {
            Err(CollectiveError::Malformed(why)) => assert!(why.contains("header"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_rank_that_never_broadcasts_times_out() {
        let mut group = LocalGroup::new(2, Duration::from_millis(200)).into_iter();
        let (zero, _one) = (group.next().unwrap(), group.next().unwrap());
        assert!(matches!(
            zero.broadcast(b"x"),
            Err(CollectiveError::Timeout { rank: 0, .. })
        ));
    }
}
