//! Finding a product by name, GVLK or SKU ID. Filled in by the catalog work.
