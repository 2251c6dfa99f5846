// Placeholder so the package builds while the store is written.
enum FoxStorePlaceholder {}
