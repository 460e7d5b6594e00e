//! Time-series CSV in both layouts: any bytes give windows or an error. The file goes through
//! a temporary path because the reader takes one (it detects gzip and reads the whole file).
#![no_main]
use libfuzzer_sys::fuzz_target;
use ssvae::data::{load_csv_series, CsvLayout, CsvSeriesOptions, FlatOrder};

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    // the first byte picks the layout and its sizes; the rest is the file
    let (pick, body) = (data[0], &data[1..]);
    let path = std::env::temp_dir().join(format!("ssvae-fuzz-{}.csv", std::process::id()));
    if std::fs::write(&path, body).is_err() {
        return;
    }
    let layout = if pick & 1 == 0 {
        CsvLayout::Flat { steps: 1 + (pick as usize >> 1) % 4, channels: 1 + (pick as usize >> 3) % 3, order: FlatOrder::StepMajor }
    } else {
        CsvLayout::Long {
            sequence_column: (pick & 2 != 0).then(|| "seq".to_string()),
            window: 1 + (pick as usize >> 2) % 5,
            stride: 1 + (pick as usize >> 5) % 3,
        }
    };
    let mut opts = CsvSeriesOptions::flat(1, 1);
    opts.layout = layout;
    opts.header = pick & 4 != 0;
    opts.label_column = (pick & 8 != 0).then(|| "label".to_string());
    let _ = load_csv_series(&path, &opts);
});
