"""The GANs: the FID Inception and statistics, pix2pix / DF-GAN training, and the synthetic sets they make."""
