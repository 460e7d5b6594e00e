//! Reading a run's data as its [`DataSpec`] names it: the built-in datasets and files
//! (`super::data`), users' folders and tables (`super::user_data`), and the subsets a run
//! trains on.

use std::path::Path;

use crate::error::{Error, Result};

use super::data::{load_csv, load_images, load_series, npy_split, DataSpec, DatasetName, Loaded};

macro_rules! invalid {
    ($($t:tt)*) => { return Err(Error::Invalid(format!($($t)*))) };
}

impl DataSpec {
    /// The dataset as named, unsubset and (series) not yet standardised; `seed` shuffles the
    /// stratified test split of users' data.
    pub fn load_raw(&self, seed: u64) -> Result<Loaded> {
        self.load_named(self.dataset, self.data_dir.as_deref(), seed)
    }

    /// `name` read with this spec's sizes and series options (eval on another dataset).
    pub fn load_named(&self, name: DatasetName, data_dir: Option<&Path>, seed: u64) -> Result<Loaded> {
        match name {
            DatasetName::Folder => Ok(Loaded::Images(super::user_data::load_folder(self, seed)?)),
            DatasetName::Table => Ok(Loaded::Series(super::user_data::load_table_split(self, seed)?)),
            DatasetName::Npy => {
                let (mut split, disk) = npy_split(self)?;
                split.train = disk.read_all(&split.train.name, split.train.class_names.clone())?;
                Ok(Loaded::Series(split))
            }
            DatasetName::Csv => {
                let mut o = self.series.clone();
                o.train_csv = o.train_csv.or_else(|| self.path.clone());
                o.test_csv = o.test_csv.or_else(|| self.test_path.clone());
                Ok(Loaded::Series(load_csv(&o, seed, self.normal_classes.is_some())?))
            }
            n if n.is_series() => Ok(Loaded::Series(load_series(n, data_dir, self.synthetic, &self.series)?)),
            n => Ok(Loaded::Images(load_images(n, data_dir, self.synthetic)?)),
        }
    }

    /// The splits a run trains and evaluates on: `max_train` and `validation` applied (the
    /// validation hold-out becomes the test split). Not standardised, anomaly class still in.
    pub fn load_subsets(&self, seed: u64) -> Result<Loaded> {
        let mut split = self.load_raw(seed)?;
        self.apply_subsets(&mut split)?;
        Ok(split)
    }

    /// `max_train` and `validation` applied to a loaded split (the validation hold-out becomes
    /// the test split).
    pub fn apply_subsets(&self, split: &mut Loaded) -> Result<()> {
        let n_train = split.train().n();
        if let Some(m) = self.max_train {
            if m == 0 || m > n_train {
                invalid!("--max-train {m}: must be between 1 and the {n_train} training samples");
            }
            split.subset_train(&(0..m).collect::<Vec<_>>());
        }
        if let Some(v) = self.validation {
            let n_train = split.train().n();
            if v == 0 || v >= n_train {
                invalid!("--validation {v}: must be between 1 and the {n_train} training samples minus one");
            }
            let n = n_train - v;
            split.test_from_train(&(n..n_train).collect::<Vec<_>>());
            split.subset_train(&(0..n).collect::<Vec<_>>());
        }
        Ok(())
    }
}
