// Placeholder so the package builds while the broker is written.
enum FoxBrokerPlaceholder {}
