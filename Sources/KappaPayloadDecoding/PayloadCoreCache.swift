import Foundation

/// One ``PayloadDecoderCore`` per thread, kept from one decode to the next: allocating and freeing
/// it (with its tape and bytes) is a good part of decoding a small payload.
///
/// A decode takes the thread's core (so a decode nested in another, from some `init(from:)`, makes
/// its own) and gives it back only if nothing else holds it (a decoder or container kept by the
/// decoded type) and it is small (at most ``maximumElements``, 64 KiB).
enum PayloadCoreCache {
    static let maximumElements = 4_096
    /// Cores are made at least this large (1 KiB), so that small payloads all fit the cached one.
    static let minimumElements = 64

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        // On thread exit, release the thread's core.
        #if canImport(Darwin)
            pthread_key_create(&key) { Unmanaged<PayloadDecoderCore>.fromOpaque($0).release() }
        #else
            pthread_key_create(&key) { pointer in
                if let pointer { Unmanaged<PayloadDecoderCore>.fromOpaque(pointer).release() }
            }
        #endif
        return key
    }()

    /// The thread's core if it has room for `elements`, else a new core.
    static func core(elements: Int) -> PayloadDecoderCore {
        if let cached = pthread_getspecific(key) {
            pthread_setspecific(key, nil)
            let core = Unmanaged<PayloadDecoderCore>.fromOpaque(cached).takeRetainedValue()
            if core.state.pointee.elements >= elements { return core }
        }
        return PayloadDecoderCore.make(elements: max(elements, minimumElements))
    }

    /// Keeps `core` (uniquely referenced by the caller) for the thread's next decode.
    static func keep(_ core: PayloadDecoderCore) {
        guard core.state.pointee.elements <= maximumElements, pthread_getspecific(key) == nil else { return }
        core.clear()
        pthread_setspecific(key, Unmanaged.passRetained(core).toOpaque())
    }
}
