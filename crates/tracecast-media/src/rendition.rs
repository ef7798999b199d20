//! Renditions made at ingest: the quality tiers a content is sold in.

use image::DynamicImage;

use crate::Pcm;

/// CD quality: 44.1 kHz (48 kHz sources keep their rate), 16 bit, at most
/// two channels.
pub fn cd_quality(pcm: &Pcm) -> Pcm {
    let rate = if pcm.sample_rate == 48_000 || pcm.sample_rate == 44_100 {
        pcm.sample_rate
    } else {
        44_100
    };
    Pcm {
        sample_rate: rate,
        // Front left and right carry the stereo image of a surround
        // master. Each channel is made from the source's own (no copy of
        // the whole first: a long work's samples are the largest thing an
        // ingest holds).
        channels: pcm
            .channels
            .iter()
            .take(2)
            .map(|c| tracecast_mark::audio::resample(c, pcm.sample_rate, rate))
            .collect(),
        bits_per_sample: Some(16),
    }
}

/// A preview: `secs` seconds from a third of the way in (or all of a short
/// work), mono, at 22.05 kHz, with half-second fades.
pub fn preview(pcm: &Pcm, secs: f64) -> Pcm {
    let sr = f64::from(pcm.sample_rate.max(1));
    let frames = pcm.frames();
    let want = ((secs * sr) as usize).min(frames);
    let start = if frames > want {
        (frames - want) / 3
    } else {
        0
    };
    let n = pcm.channels.len().max(1) as f32;
    let mut mono: Vec<f32> = (start..start + want)
        .map(|i| pcm.channels.iter().map(|c| c[i]).sum::<f32>() / n)
        .collect();
    let fade = ((0.5 * sr) as usize).min(mono.len() / 2);
    for i in 0..fade {
        let g = i as f32 / fade as f32;
        mono[i] *= g;
        let j = mono.len() - 1 - i;
        mono[j] *= g;
    }
    Pcm {
        sample_rate: 22_050,
        channels: vec![tracecast_mark::audio::resample(
            &mono,
            pcm.sample_rate,
            22_050,
        )],
        bits_per_sample: Some(16),
    }
}

/// The picture fitted into `max_side` pixels on its longer side (never
/// enlarged), with a Lanczos filter.
pub fn fit_picture(img: &DynamicImage, max_side: u32) -> DynamicImage {
    if img.width().max(img.height()) <= max_side {
        return img.clone();
    }
    img.resize(max_side, max_side, image::imageops::FilterType::Lanczos3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_have_the_promised_shape() {
        let master = Pcm {
            sample_rate: 96_000,
            channels: vec![vec![0.1; 96_000 * 40], vec![-0.1; 96_000 * 40]],
            bits_per_sample: Some(24),
        };
        let cd = cd_quality(&master);
        assert_eq!(cd.sample_rate, 44_100);
        assert_eq!(cd.bits_per_sample, Some(16));
        assert!((cd.duration_secs() - 40.0).abs() < 0.01);
        let p = preview(&master, 30.0);
        assert_eq!(p.channels.len(), 1);
        assert!((p.duration_secs() - 30.0).abs() < 0.01);
        let short = preview(
            &Pcm {
                channels: vec![vec![0.0; 1000]],
                ..master.clone()
            },
            30.0,
        );
        assert!(short.frames() <= 1000);
        let img = DynamicImage::new_rgb8(3000, 1000);
        let fitted = fit_picture(&img, 2048);
        assert_eq!((fitted.width(), fitted.height()), (2048, 683));
        assert_eq!(fit_picture(&img, 4000).width(), 3000);
    }
}
