//! The sprites generator, the betaVAE disentanglement metric (on codes whose answer is known)
//! and cluster-and-label accuracy on hand-built cases.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use ssvae::data::sprites::{
    render_sprite, render_sprite_into, sample_factors, sample_pair_factors, sprite_factor_sizes, sprite_pair_images, sprites,
    SpriteFactors, NUM_SPRITE_FACTORS, POS_X, POS_Y, ROTATION, SCALE, SHAPE, SPRITE_FACTORS, SPRITE_SIZE,
};
use ssvae::eval::cluster::{argmax_rows, cluster_and_label, cluster_and_label_keeping, slot_majority};
use ssvae::eval::disentangle::{
    beta_vae_score, beta_vae_score_of_code, beta_vae_score_of_latents, BetaVaeConfig, LinearClassifier, LogisticConfig,
};

const S: usize = SPRITE_SIZE;

fn mass(img: &[u8]) -> f64 {
    img.iter().map(|&v| v as f64).sum()
}

/// Intensity-weighted centre (x, y) in pixels.
fn centroid(img: &[u8]) -> (f64, f64) {
    let (mut x, mut y) = (0.0, 0.0);
    for (i, &v) in img.iter().enumerate() {
        x += (i % S) as f64 * v as f64;
        y += (i / S) as f64 * v as f64;
    }
    (x / mass(img), y / mass(img))
}

#[test]
fn sprites_fit_the_frame_at_every_extreme() {
    assert_eq!(SPRITE_FACTORS.map(|f| f.1), [3, 6, 10, 16, 16]);
    for shape in 0..3 {
        for scale in 0..6 {
            for rot in 0..10 {
                for (x, y) in [(0, 0), (15, 0), (0, 15), (15, 15), (7, 8)] {
                    let f = [shape, scale, rot, x, y];
                    let img = render_sprite(&f).unwrap();
                    assert_eq!(img.len(), S * S);
                    assert!(mass(&img) > 0.0, "{f:?} is empty");
                    // at least one empty pixel row and column all around: nothing was clipped
                    for i in 0..S {
                        for (px, py) in [(i, 0), (i, S - 1), (0, i), (S - 1, i)] {
                            assert_eq!(img[py * S + px], 0, "{f:?} touches the border at ({px}, {py})");
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn every_factor_changes_the_image() {
    let base: SpriteFactors = [0, 3, 2, 7, 8];
    let base_img = render_sprite(&base).unwrap();
    for (k, &(name, n)) in SPRITE_FACTORS.iter().enumerate() {
        for v in (0..n).filter(|&v| v != base[k]) {
            let mut f = base;
            f[k] = v;
            assert_ne!(render_sprite(&f).unwrap(), base_img, "{name} = {v} renders like {name} = {}", base[k]);
        }
    }
    for shape in 0..3 {
        // scale: the ink grows with every step
        let masses: Vec<f64> = (0..6).map(|s| mass(&render_sprite(&[shape, s, 0, 7, 7]).unwrap())).collect();
        assert!(masses.windows(2).all(|w| w[1] > w[0] * 1.1), "shape {shape}: masses {masses:?}");
        // rotation: ten different images over the symmetry period, same ink within the
        // anti-aliasing error
        let rots: Vec<Vec<u8>> = (0..10).map(|r| render_sprite(&[shape, 5, r, 7, 7]).unwrap()).collect();
        for i in 0..10 {
            for j in i + 1..10 {
                assert_ne!(rots[i], rots[j], "shape {shape}: rotations {i} and {j} look the same");
            }
            assert!((mass(&rots[i]) / mass(&rots[0]) - 1.0).abs() < 0.05);
        }
        // position: the centroid moves right (down) by the same step each time
        let cx: Vec<f64> = (0..16).map(|x| centroid(&render_sprite(&[shape, 2, 0, x, 7]).unwrap()).0).collect();
        let cy: Vec<f64> = (0..16).map(|y| centroid(&render_sprite(&[shape, 2, 0, 7, y]).unwrap()).1).collect();
        for c in [&cx, &cy] {
            let steps: Vec<f64> = c.windows(2).map(|w| w[1] - w[0]).collect();
            assert!(steps.iter().all(|&d| (d - 38.0 / 15.0).abs() < 0.3), "shape {shape}: steps {steps:?}");
        }
    }
    // the three shapes differ in ink at the same scale (square > heart > ellipse here)
    let m: Vec<f64> = (0..3).map(|s| mass(&render_sprite(&[s, 5, 0, 7, 7]).unwrap())).collect();
    assert!(m[0] != m[1] && m[1] != m[2] && m[0] != m[2], "{m:?}");
    // anti-aliased: edge pixels take intermediate values
    let img = render_sprite(&[1, 5, 3, 7, 7]).unwrap();
    assert!(img.iter().filter(|&&v| v > 0 && v < 255).count() > 20);
}

#[test]
fn sprites_are_deterministic_and_labeled_by_the_chosen_factor() {
    assert_eq!(render_sprite(&[2, 4, 7, 3, 12]).unwrap(), render_sprite(&[2, 4, 7, 3, 12]).unwrap());
    let a = sprites(600, SHAPE, 9).unwrap();
    assert_eq!(a, sprites(600, SHAPE, 9).unwrap());
    assert_ne!(a.factors, sprites(600, SHAPE, 10).unwrap().factors);
    let d = &a.data;
    assert_eq!((d.n, d.height, d.width, d.channels, d.classes), (600, 64, 64, 1, 3));
    assert_eq!(d.class_names, ["square", "ellipse", "heart"]);
    assert_eq!(d.pixels.len(), 600 * 64 * 64);
    for i in 0..d.n {
        assert_eq!(d.labels[i] as usize, a.factors[i][SHAPE]);
        assert_eq!(d.sample(i), &render_sprite(&a.factors[i]).unwrap()[..]);
    }
    // every factor roughly uniform
    for (k, &(name, n)) in SPRITE_FACTORS.iter().enumerate() {
        let mut counts = vec![0usize; n];
        a.factors.iter().for_each(|f| counts[f[k]] += 1);
        let expect = 600.0 / n as f64;
        assert!(counts.iter().all(|&c| (c as f64 - expect).abs() < 4.0 * expect.sqrt() + 2.0), "{name}: {counts:?}");
    }
    let by_x = sprites(50, POS_X, 9).unwrap();
    assert_eq!(by_x.data.classes, 16);
    assert!(by_x.data.labels.iter().zip(&by_x.factors).all(|(&l, f)| l as usize == f[POS_X]));
}

#[test]
fn sprite_inputs_are_checked() {
    assert!(render_sprite(&[0, 0, 0, 0]).is_err());
    assert!(render_sprite(&[3, 0, 0, 0, 0]).is_err());
    assert!(render_sprite(&[0, 6, 0, 0, 0]).is_err());
    assert!(render_sprite(&[0, 0, 0, 0, 16]).is_err());
    assert!(render_sprite_into(&[0, 0, 0, 0, 0], &mut [0u8; 10]).is_err());
    assert!(sprites(10, NUM_SPRITE_FACTORS, 0).is_err());
    let mut rng = StdRng::seed_from_u64(0);
    assert!(sample_pair_factors(NUM_SPRITE_FACTORS, 4, &mut rng).is_err());
}

#[test]
fn pairs_share_exactly_the_chosen_factor() {
    let mut rng = StdRng::seed_from_u64(3);
    for k in 0..NUM_SPRITE_FACTORS {
        let pairs = sample_pair_factors(k, 200, &mut rng).unwrap();
        assert!(pairs.iter().all(|(a, b)| a[k] == b[k]));
        for j in (0..NUM_SPRITE_FACTORS).filter(|&j| j != k) {
            let differ = pairs.iter().filter(|(a, b)| a[j] != b[j]).count();
            assert!(differ > 100, "factor {j} differs in only {differ} of 200 pairs sharing {k}");
        }
    }
    let (a, b) = sprite_pair_images(ROTATION, 3, &mut rng).unwrap();
    assert_eq!((a.len(), b.len()), (3 * S * S, 3 * S * S));
    assert!(a.iter().chain(&b).all(|&v| (0.0..=1.0).contains(&v)));
    let f = sample_factors(&mut rng);
    assert!(f.iter().zip(sprite_factor_sizes()).all(|(&v, n)| v < n));
}

/// The factor values scaled to [0, 1].
fn unit(f: &[usize], sizes: &[usize]) -> Vec<f32> {
    f.iter().zip(sizes).map(|(&v, &n)| v as f32 / (n - 1).max(1) as f32).collect()
}

#[test]
fn beta_vae_scores_known_codes() {
    let sizes = sprite_factor_sizes();
    let cfg = BetaVaeConfig::default();
    // disentangled: one coordinate per factor, plus tiny noise
    let mut noise = StdRng::seed_from_u64(1);
    let clean =
        beta_vae_score_of_code(|f| unit(f, &sizes).into_iter().map(|z| z + 1e-3 * (noise.random::<f32>() - 0.5)).collect(), &sizes, &cfg)
            .unwrap();
    // random: independent of the factors
    let mut noise = StdRng::seed_from_u64(2);
    let random = beta_vae_score_of_code(|_| (0..10).map(|_| noise.random::<f32>()).collect(), &sizes, &cfg).unwrap();
    // x and y mixed by a 45 degree rotation: pairs sharing x and pairs sharing y give the same
    // feature distribution, so those votes are a coin flip: expected score 3/5 + 2/5 * 1/2
    let entangled = beta_vae_score_of_code(
        |f| {
            let u = unit(f, &sizes);
            let r = std::f32::consts::FRAC_1_SQRT_2;
            vec![u[0], u[1], u[2], r * (u[3] + u[4]), r * (u[3] - u[4])]
        },
        &sizes,
        &cfg,
    )
    .unwrap();
    println!("betaVAE disentangled: {clean:?}\nbetaVAE random: {random:?}\nbetaVAE x/y entangled: {entangled:?}");
    assert_eq!(clean.latent_dim, 5);
    assert!(clean.test_accuracy >= 0.99 && clean.train_accuracy >= 0.99, "{clean:?}");
    assert!((random.test_accuracy - 0.2).abs() < 0.05, "{random:?}");
    assert!((entangled.test_accuracy - 0.8).abs() < 0.06, "{entangled:?}");
    let pf = &entangled.per_factor_test_accuracy;
    for k in [SHAPE, SCALE, ROTATION] {
        assert!(pf[k].unwrap() > 0.95, "{pf:?}");
    }
    for k in [POS_X, POS_Y] {
        assert!((pf[k].unwrap() - 0.5).abs() < 0.15, "{pf:?}");
    }
    // a fixed seed gives the same score; another seed a different draw
    let mut noise = StdRng::seed_from_u64(2);
    let again = beta_vae_score_of_code(|_| (0..10).map(|_| noise.random::<f32>()).collect(), &sizes, &cfg).unwrap();
    assert_eq!(again, random);
}

/// An encoder of sprite images to intensity moments: mass, centroid and second moments.
fn moments(images: &[f32], rows: usize) -> ssvae::Result<Vec<f32>> {
    let d = images.len() / rows;
    let mut out = Vec::with_capacity(rows * 6);
    for img in images.chunks(d) {
        let (mut m, mut x, mut y, mut xx, mut yy, mut xy) = (0f64, 0f64, 0f64, 0f64, 0f64, 0f64);
        for (i, &v) in img.iter().enumerate() {
            let (px, py, v) = ((i % S) as f64, (i / S) as f64, v as f64);
            m += v;
            x += v * px;
            y += v * py;
            xx += v * px * px;
            yy += v * py * py;
            xy += v * px * py;
        }
        let (cx, cy) = (x / m, y / m);
        out.extend([m / 100.0, cx, cy, xx / m - cx * cx, yy / m - cy * cy, xy / m - cx * cy].map(|v| v as f32));
    }
    Ok(out)
}

#[test]
fn beta_vae_on_rendered_sprites() {
    let cfg = BetaVaeConfig { pairs_per_vote: 16, train_votes: 300, test_votes: 300, seed: 4, ..Default::default() };
    let score = beta_vae_score(moments, |k, l, rng: &mut StdRng| sprite_pair_images(k, l, rng), NUM_SPRITE_FACTORS, &cfg).unwrap();
    // an encoder that ignores the image
    let blind = beta_vae_score(
        |_: &[f32], rows| Ok((0..rows * 4).map(|i| ((i * 7919) % 101) as f32).collect()),
        |k, l, rng: &mut StdRng| sprite_pair_images(k, l, rng),
        NUM_SPRITE_FACTORS,
        &cfg,
    )
    .unwrap();
    println!("betaVAE of image moments on sprites: {score:?}\nbetaVAE of a blind encoder: {blind:?}");
    // the centroid codes x and y and the mass codes scale: well above chance (0.2)
    assert!(score.test_accuracy > 0.5, "{score:?}");
    assert!(score.per_factor_test_accuracy[POS_X].unwrap() > 0.8 && score.per_factor_test_accuracy[POS_Y].unwrap() > 0.8);
    assert!(blind.test_accuracy < 0.32, "{blind:?}");
    let again = beta_vae_score(moments, |k, l, rng: &mut StdRng| sprite_pair_images(k, l, rng), NUM_SPRITE_FACTORS, &cfg).unwrap();
    assert_eq!(again, score);
}

#[test]
fn beta_vae_on_precomputed_latents_of_a_dataset() {
    let set = sprites(3000, SHAPE, 5).unwrap();
    let sizes = sprite_factor_sizes();
    let cfg = BetaVaeConfig { train_votes: 1000, test_votes: 1000, ..Default::default() };
    let clean: Vec<f32> = set.factors.iter().flat_map(|f| unit(f, &sizes)).collect();
    let mut rng = StdRng::seed_from_u64(8);
    let random: Vec<f32> = (0..3000 * 6).map(|_| rng.random::<f32>()).collect();
    let s_clean = beta_vae_score_of_latents(&set.factors, &clean, &cfg).unwrap();
    let s_random = beta_vae_score_of_latents(&set.factors, &random, &cfg).unwrap();
    println!("betaVAE of latents, disentangled: {s_clean:?}\nrandom: {s_random:?}");
    assert!(s_clean.test_accuracy > 0.97, "{s_clean:?}");
    assert!((s_random.test_accuracy - 0.2).abs() < 0.06, "{s_random:?}");
    assert!(beta_vae_score_of_latents(&set.factors, &clean[..100], &cfg).is_err());
    assert!(beta_vae_score_of_latents::<SpriteFactors>(&[], &[], &cfg).is_err());
}

#[test]
fn beta_vae_rejects_bad_settings_and_encoders() {
    let sizes = [3, 4];
    let code = |f: &[usize]| f.iter().map(|&v| v as f32).collect::<Vec<f32>>();
    let ok = BetaVaeConfig { train_votes: 50, test_votes: 50, pairs_per_vote: 4, ..Default::default() };
    assert!(beta_vae_score_of_code(code, &sizes, &ok).is_ok());
    assert!(beta_vae_score_of_code(code, &[3], &ok).is_err());
    assert!(beta_vae_score_of_code(code, &[3, 0], &ok).is_err());
    assert!(beta_vae_score_of_code(code, &[3, (1 << 24) + 1], &ok).is_err());
    for bad in
        [BetaVaeConfig { pairs_per_vote: 0, ..ok }, BetaVaeConfig { test_votes: 0, ..ok }, BetaVaeConfig { votes_per_encode: 0, ..ok }]
    {
        assert!(beta_vae_score_of_code(code, &sizes, &bad).is_err());
    }
    let pairs = |k: usize, l: usize, rng: &mut StdRng| sprite_pair_images(k, l, rng);
    let small = BetaVaeConfig { train_votes: 4, test_votes: 4, pairs_per_vote: 2, ..Default::default() };
    // latent rows of changing width, a length that is not rows x d, NaN
    let mut calls = 0;
    let changing = |_: &[f32], rows: usize| {
        calls += 1;
        Ok(vec![0.5; rows * (1 + calls % 2)])
    };
    assert!(beta_vae_score(changing, pairs, NUM_SPRITE_FACTORS, &BetaVaeConfig { votes_per_encode: 1, ..small }).is_err());
    assert!(beta_vae_score(|_: &[f32], rows| Ok(vec![0.5; rows * 2 + 1]), pairs, NUM_SPRITE_FACTORS, &small).is_err());
    assert!(beta_vae_score(|_: &[f32], rows| Ok(vec![f32::NAN; rows]), pairs, NUM_SPRITE_FACTORS, &small).is_err());
    // the encoder's own error comes through
    let failing = |_: &[f32], _| Err(ssvae::Error::Invalid("no model".into()));
    assert!(matches!(beta_vae_score(failing, pairs, NUM_SPRITE_FACTORS, &small), Err(ssvae::Error::Invalid(m)) if m == "no model"));
}

#[test]
fn linear_classifier_separates_separable_classes() {
    // three blobs on a line in one feature plus a constant feature: linearly separable
    let mut rng = StdRng::seed_from_u64(6);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for i in 0..300 {
        let c = i % 3;
        x.extend([c as f64 * 10.0 + rng.random::<f64>(), 7.0]);
        y.push(c);
    }
    let clf = LinearClassifier::fit(&x, &y, 2, 3, &LogisticConfig::default()).unwrap();
    assert_eq!(clf.accuracy(&x, &y).unwrap(), 1.0);
    assert_eq!(clf.predict(&[0.5, 7.0, 20.5, 7.0]).unwrap(), [0, 2]);
    assert_eq!(clf, LinearClassifier::fit(&x, &y, 2, 3, &LogisticConfig::default()).unwrap());
    assert!(LinearClassifier::fit(&x, &y, 2, 2, &LogisticConfig::default()).is_err());
    assert!(LinearClassifier::fit(&x[..5], &y, 2, 3, &LogisticConfig::default()).is_err());
    assert!(LinearClassifier::fit(&[f64::NAN, 0.0], &[0], 2, 3, &LogisticConfig::default()).is_err());
    assert!(clf.predict(&[1.0, 2.0, 3.0]).is_err());
}

#[test]
fn cluster_and_label_hand_built() {
    // 5 slots, 3 classes. Training: slot 0 holds classes {0, 0, 1} -> 0; slot 1 {1, 2}, a tie
    // -> 1 (smaller id); slot 2 {2, 2, 2, 0} -> 2; slot 3 {2} -> 2 (two slots for one class);
    // slot 4 nothing -> unmapped
    let train_slots = [0, 0, 0, 1, 1, 2, 2, 2, 2, 3];
    let train_labels = [0, 0, 1, 1, 2, 2, 2, 2, 0, 2];
    assert_eq!(slot_majority(&train_slots, &train_labels, 5, 3).unwrap(), [Some(0), Some(1), Some(2), Some(2), None]);
    // test (slot, class): (0,0) ok, (0,1) wrong, (1,1) ok, (1,2) wrong, (2,2) ok twice, (3,2) ok,
    // (4,0) and (4,2) wrong (empty slot)
    let test_slots = [0, 0, 1, 1, 2, 2, 3, 4, 4];
    let test_labels = [0, 1, 1, 2, 2, 2, 2, 0, 2];
    let r = cluster_and_label(&train_slots, &train_labels, &test_slots, &test_labels, 5, 3).unwrap();
    assert_eq!(r.correct, [1, 1, 3]);
    assert_eq!(r.total, [2, 2, 5]);
    assert!((r.accuracy() - 5.0 / 9.0).abs() < 1e-12);
    assert_eq!(r.per_class_accuracy(), [Some(0.5), Some(0.5), Some(0.6)]);
    assert_eq!(r.accuracy_on(&[0, 1]).unwrap(), Some(0.5));
    assert_eq!(r.accuracy_on(&[2, 2]).unwrap(), Some(0.6));
    assert_eq!(r.predict(4), None);
    assert_eq!(r.predict(3), Some(2));
    assert!(r.accuracy_on(&[3]).is_err());

    // the map comes from the training data: slot 0 is mostly class 0 there, but its test
    // points are mostly class 1, which a map built on the test set would reward
    let (train_s, train_l) = ([0, 0, 0, 1, 1], [0, 0, 1, 1, 1]);
    let (test_s, test_l) = ([0, 0, 0, 1], [1, 1, 0, 1]);
    let from_train = cluster_and_label(&train_s, &train_l, &test_s, &test_l, 2, 2).unwrap();
    let from_test = cluster_and_label(&test_s, &test_l, &test_s, &test_l, 2, 2).unwrap();
    assert_eq!(from_train.slot_class, [Some(0), Some(1)]);
    assert_eq!(from_test.slot_class, [Some(1), Some(1)]);
    assert_eq!(from_train.accuracy(), 0.5);
    assert_eq!(from_test.accuracy(), 0.75);
    // a class missing from the test set: no per-class accuracy, groups of it have none either
    let r = cluster_and_label(&[0, 1, 2], &[0, 1, 2], &[0, 1], &[0, 1], 3, 3).unwrap();
    assert_eq!(r.per_class_accuracy(), [Some(1.0), Some(1.0), None]);
    assert_eq!(r.accuracy_on(&[2]).unwrap(), None);
    assert_eq!(r.accuracy(), 1.0);
}

#[test]
fn cluster_and_label_keeping_labeled_slots() {
    // 4 slots, 3 classes; class 1 had labels (slot 1), classes 0 and 2 none. Training: slot 1
    // is taken over by class 2 ({2, 2, 1}), slot 0 holds class 0, slots 2 and 3 hold {1, 1} and
    // {2}. By majority slot 1 -> 2 and slot 2 -> 1; keeping the labeled slot, slot 1 -> 1.
    let train_slots = [0, 1, 1, 1, 2, 2, 3];
    let train_labels = [0, 2, 2, 1, 1, 1, 2];
    // test (slot, class): (0,0), (1,2), (1,2), (1,1), (2,1), (3,2)
    let test_slots = [0, 1, 1, 1, 2, 3];
    let test_labels = [0, 2, 2, 1, 1, 2];
    let majority = cluster_and_label(&train_slots, &train_labels, &test_slots, &test_labels, 4, 3).unwrap();
    assert_eq!(majority.slot_class, [Some(0), Some(2), Some(1), Some(2)]);
    assert_eq!(majority.correct, [1, 1, 3]);
    let kept = cluster_and_label_keeping(&train_slots, &train_labels, &test_slots, &test_labels, 4, 3, &[1]).unwrap();
    assert_eq!(kept.slot_class, [Some(0), Some(1), Some(1), Some(2)]);
    assert_eq!(kept.correct, [1, 2, 1], "the labeled class is credited, the class that filled its slot debited");
    assert_eq!(kept.accuracy_on(&[1]).unwrap(), Some(1.0));
    assert_eq!(majority.accuracy_on(&[1]).unwrap(), Some(0.5));
    // keeping nothing is the majority rule; a kept class needs a slot of its own
    assert_eq!(cluster_and_label_keeping(&train_slots, &train_labels, &test_slots, &test_labels, 4, 3, &[]).unwrap(), majority);
    let err = cluster_and_label_keeping(&[0, 1], &[0, 1], &[0], &[0], 2, 3, &[2]).unwrap_err().to_string();
    assert!(err.contains("kept class 2"), "{err}");
}

#[test]
fn cluster_inputs_are_checked_and_argmax_breaks_ties_low() {
    assert!(cluster_and_label(&[0, 1], &[0], &[0], &[0], 2, 2).is_err());
    assert!(cluster_and_label(&[0, 2], &[0, 1], &[0], &[0], 2, 2).is_err());
    assert!(cluster_and_label(&[0, 1], &[0, 2], &[0], &[0], 2, 2).is_err());
    assert!(cluster_and_label(&[0, 1], &[0, 1], &[], &[], 2, 2).is_err());
    assert!(cluster_and_label(&[], &[], &[0], &[0], 2, 2).is_err());
    assert_eq!(argmax_rows(&[0.2, 0.5, 0.5, 0.1, f32::NAN, 0.3, 0.3, 0.0, 0.0], 3).unwrap(), [1, 2, 0]);
    assert_eq!(argmax_rows(&[f32::NAN, 1.0], 2).unwrap(), [1]);
    assert!(argmax_rows(&[1.0, 2.0, 3.0], 2).is_err());
    assert!(argmax_rows(&[], 0).is_err());
}
