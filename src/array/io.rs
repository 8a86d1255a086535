//! Reading and writing arrays: `.npy` files and directories of blocks.
