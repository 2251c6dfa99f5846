import NIOCore

extension ByteBuffer {
    /// This buffer's bytes in storage of their own size when it is a small slice of a large
    /// read buffer. A payload kept for long (retained, queued for an absent client, a will)
    /// would otherwise pin the whole buffer it was read into, up to 64 KiB for a few bytes.
    func compacted() -> ByteBuffer {
        guard storageCapacity > 2 * readableBytes + 1024 else { return self }
        var copy = ByteBufferAllocator().buffer(capacity: readableBytes)
        copy.writeImmutableBuffer(self)
        return copy
    }
}
