//! Golden vectors from ggml's own reference code: `quantize_row_*_ref` and
//! `dequantize_row_*` of `ggml-quants.c`, compiled with gcc 12
//! (`-O1 -ffp-contract=off`, f16 via `_Float16`) and run on the inputs
//! below (the same formulas in C). Seam's encoders and decoders must
//! reproduce them bit for bit.

use seam_core::quant::{dequantize, quantize};
use seam_core::{GgmlType, WeightFormat};

/// 256 weights: `((i·2654435761 mod 2^32) >> 20) − 2048) / 512 · 2^((i/32) mod 4)`,
/// sub-block 2 made non-negative, sub-block 6 zero (exact in f32).
fn golden_input() -> Vec<f32> {
    (0u32..256)
        .map(|i| {
            let v = ((i.wrapping_mul(2_654_435_761) >> 20) as i32 - 2048) as f32 / 512.0
                * (1u32 << ((i / 32) % 4)) as f32;
            match i / 32 {
                2 => v.abs(),
                6 => 0.0,
                _ => v,
            }
        })
        .collect()
}

/// 256 bytes `(i·131 + 7·(i >> 3)) mod 256` with the f16 scales at `scale_at`
/// replaced by `0x3800` (0.5) and, for a second one, `0x3400` (0.25).
fn golden_bytes(scale_at: &[usize]) -> Vec<u8> {
    let mut b: Vec<u8> = (0u32..256)
        .map(|i| (i * 131 + 7 * (i >> 3)) as u8)
        .collect();
    for (&at, half) in scale_at.iter().zip([0x38u8, 0x34]) {
        b[at] = 0x00;
        b[at + 1] = half;
    }
    b
}

fn unhex(chunks: &[&str]) -> Vec<u8> {
    let s: String = chunks.concat();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

const Q8_0_BYTES: &[&str] = &[
    "0828811ebd5af99835d47110af4ceb8a27c66302a13edd7a19b855f3922fce6b",
    "0aa9ee2b48e58222bf5ffc9a39d77613b150ee8b2bc86805a242df7f1cba59f7",
    "9434d171fc2f0e544a187a253d6200623c2679174b530f712e346a085a451d7f",
    "20425c066837cd33d47612ad50eb8729c567039f41dd7f1bb659f49032ce700c",
    "a84ae68124bf62fd02289c3ad87615b351ef8e2cca6806a543e17f1dbc5af896",
    "34d3710fad4bea8826c5e72b64019e3edb7b18b555f28f30cd6d0aa747e48121",
    "be5efb9839d67613b050ed8a0000000000000000000000000000000000000000",
    "00000000000000000000000000000534f18f2dcb6908a644e2811fbd5bf99836",
    "d47210af4ceb8a27c66302a13edd7a19",
];

const Q4_0_BYTES: &[&str] = &[
    "0038e08a24ce68f1ab35df7913bd57f19a34debb53ca1f86ec42a80e64cb2197",
    "fd53b91fecbf77135357107624426802644620871353bdc3db2197fd53b91f75",
    "ec31a8fe64ca2086f3b70e64cb2187fd53b91f75db3198fe64cad73bce6802ac",
    "46ef8a13cd57f19b35df7912008088888888888888888888888888888888f943",
    "57f19b35df7812ac46e08a24ce68f1ab",
];

const Q4_1_BYTES: &[&str] = &[
    "2d3800c4e08924bd67f19b35de7913bc56e18a242d3ccbc7ac46e08924bd67f1",
    "9b35de7913bc56e1363c002b22da5963de14b78c30fc4784be13c96a1f44b6cf",
    "35de7913ac56e08a24ce6802ab45df791f3880c3f19b35de7913ac56e08a24ce",
    "6802ab451f3cd7c7ce6802ab45df7913bd57f19a35ce68120000000000000000",
    "0000000000000000000000002d44f9cf57e19a34ce6812ac46e08924bd67f19b",
];

const Q4_K_BYTES: &[&str] = &[
    "312c1738081010fd074f00fc780f00ffc069039c36d17a14be58e28b36c06903",
    "ad47d18b25be58f29c36d07a14ad57e252fa9933de6407ac40ec8725ce63f99a",
    "32dd7516bd51fb8823cf6408ab41ec87f18a24ce68f2ac46e07914bd57f19b35",
    "de7903ac46e18a24ce68f2ab36d079137010b050e08020c06000a040d07010b0",
    "50f09030c07010a040e08020c060f090",
];

const Q5_K_SAMPLES: &[(usize, f32)] = &[
    (0, 52.25),
    (17, 154.25),
    (34, 81.5),
    (51, 51.5),
    (68, 8.75),
    (85, 17.75),
    (102, 32.0),
    (119, -10.0),
    (136, 93.0),
    (153, 98.5),
    (170, 656.5),
    (187, 564.5),
    (204, 11.75),
    (221, 4.25),
    (238, 79.25),
    (255, 25.25),
];

const Q6_K_SAMPLES: &[(usize, f32)] = &[
    (0, 384.0),
    (17, -802.5),
    (34, 126.0),
    (51, -734.5),
    (68, -96.0),
    (85, 1666.0),
    (102, 72.0),
    (119, 1250.0),
    (136, 80.5),
    (153, 1416.0),
    (170, -149.5),
    (187, 1232.0),
    (204, -133.0),
    (221, 106.0),
    (238, 125.0),
    (255, 500.0),
];

const Q5_0_SAMPLES: &[(usize, f32)] = &[
    (0, -7.0),
    (3, -7.0),
    (6, -2.5),
    (9, -6.0),
    (12, -6.0),
    (15, 6.5),
    (18, 0.5),
    (21, -3.0),
    (24, 1.5),
    (27, 6.0),
    (30, -6.0),
];

const Q5_1_SAMPLES: &[(usize, f32)] = &[
    (0, 7.75),
    (3, 12.25),
    (6, 0.75),
    (9, 8.75),
    (12, 5.25),
    (15, 9.75),
    (18, 1.25),
    (21, 5.25),
    (24, 9.75),
    (27, 6.25),
    (30, 2.75),
];

#[test]
fn quantize_matches_ggml_reference_bytes() {
    let x = golden_input();
    for (format, want) in [
        (WeightFormat::Q8_0, Q8_0_BYTES),
        (WeightFormat::Q4_0, Q4_0_BYTES),
        (WeightFormat::Q4_1, Q4_1_BYTES),
        (WeightFormat::Q4K, Q4_K_BYTES),
    ] {
        assert_eq!(quantize(format, &x).unwrap(), unhex(want), "{format}");
    }
}

/// One decoder check: the type, where its f16 scales sit in the golden
/// bytes, how many elements to decode, and the expected samples.
struct DecodeCase {
    ty: GgmlType,
    scale_at: &'static [usize],
    elems: usize,
    samples: &'static [(usize, f32)],
}

#[test]
fn dequantize_matches_ggml_reference_values() {
    let cases = [
        DecodeCase {
            ty: GgmlType::Q5K,
            scale_at: &[0, 2],
            elems: 256,
            samples: Q5_K_SAMPLES,
        },
        DecodeCase {
            ty: GgmlType::Q6K,
            scale_at: &[208],
            elems: 256,
            samples: Q6_K_SAMPLES,
        },
        DecodeCase {
            ty: GgmlType::Q5_0,
            scale_at: &[0],
            elems: 32,
            samples: Q5_0_SAMPLES,
        },
        DecodeCase {
            ty: GgmlType::Q5_1,
            scale_at: &[0, 2],
            elems: 32,
            samples: Q5_1_SAMPLES,
        },
    ];
    for c in cases {
        let bytes = golden_bytes(c.scale_at);
        let mut out = vec![0f32; c.elems];
        let len = c.ty.tensor_bytes(c.elems as u64).unwrap() as usize;
        dequantize(c.ty, &bytes[..len], &mut out).unwrap();
        for &(i, want) in c.samples {
            assert_eq!(out[i], want, "{} element {i}", c.ty);
        }
    }
}

#[test]
fn q4_k_reference_bytes_decode_close_to_the_input() {
    // The golden Q4_K block decodes to within one 4-bit step of each
    // sub-block's range (the bound `core/tests/quant.rs` states).
    let x = golden_input();
    let mut y = vec![0f32; 256];
    dequantize(GgmlType::Q4K, &unhex(Q4_K_BYTES), &mut y).unwrap();
    for (xb, yb) in x.chunks(32).zip(y.chunks(32)) {
        let lo = xb.iter().fold(0f32, |a, &v| a.min(v));
        let hi = xb.iter().fold(0f32, |a, &v| a.max(v));
        for (a, b) in xb.iter().zip(yb) {
            assert!((a - b).abs() <= (hi - lo) / 15.0 + 0.02 * 32.0, "{a} → {b}");
        }
    }
}
