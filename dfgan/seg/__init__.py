"""U-Net++ segmentation: the training set of each condition, augmentation, the fit and the multi-seed experiment."""
