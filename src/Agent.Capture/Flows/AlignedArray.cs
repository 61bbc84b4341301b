using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Tripline.Capture.Flows;

/// <summary>
/// A zeroed array of unmanaged structs whose first element starts on a cache line, and, once it spans a megabyte or
/// more, on a 2 MiB boundary in memory advised for transparent huge pages (<c>MADV_HUGEPAGE</c>; the common
/// <c>madvise</c> setting of <c>/sys/kernel/mm/transparent_hugepage/enabled</c> gives huge pages only to memory that
/// asks). The flow table keeps its entries here. Aligned, an entry's hot part (the key and what a packet updates)
/// fills two whole cache lines instead of straddling three, and in 4 KiB pages every lookup of a random slot in a
/// table of a few megabytes is also a TLB miss, which under a hypervisor costs a two-level page walk.
/// </summary>
/// <remarks>
/// The storage is a pinned managed array, so the collector owns it (no native memory to free) and its address never
/// changes; elements are reached from the aligned start computed once.
/// </remarks>
internal sealed unsafe class AlignedArray<T> where T : unmanaged
{
    private const int MadvHugePage = 14;
    private const int MadvPopulateWrite = 23;
    internal const long HugePageBytes = 2 * 1024 * 1024;
    /// <summary>From this size on the array is placed in huge pages: one 2 MiB page then replaces 512 TLB entries.</summary>
    internal const long HugePageThreshold = 1024 * 1024;
    private const int CacheLine = 64;

    private readonly CacheLineBytes[] _storage;
    private readonly T* _first;

    /// <summary>The unit of storage: counting in lines rather than bytes keeps tables past 2 GB (a bound of 2^26 flows) allocatable.</summary>
    [StructLayout(LayoutKind.Sequential, Size = CacheLine)]
    private struct CacheLineBytes;

    public AlignedArray(int length)
    {
        Length = length;
        long bytes = (long)length * sizeof(T);
        bool huge = bytes >= HugePageThreshold;
        long alignment = huge ? HugePageBytes : CacheLine;
        // Whole huge pages, so the last one is not shared with other objects (which would keep it from being huge).
        long span = huge ? (bytes + HugePageBytes - 1) & ~(HugePageBytes - 1) : bytes;
        // The collector hands the array out zeroed; the lines before and after the aligned span are never touched.
        _storage = GC.AllocateArray<CacheLineBytes>(checked((int)((span + alignment + CacheLine - 1) / CacheLine)), pinned: true);
        long start = (long)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_storage));
        _first = (T*)((start + alignment - 1) & ~(alignment - 1));
        if (huge && OperatingSystem.IsLinux())
        {
            Advise(_first, span);
            Populate(_storage, _first, span);
        }
    }

    public int Length { get; }

    /// <summary>The element at <paramref name="index"/>; checked like an array's, since a stray index would write outside.</summary>
    public ref T this[int index]
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get
        {
            if ((uint)index >= (uint)Length) ThrowIndex();
            return ref _first[index];
        }
    }

    /// <summary>The element's address, for prefetching; any index is fine, since a prefetch never faults.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public byte* AddressOf(int index) => (byte*)(_first + index);

    private static void ThrowIndex() => throw new ArgumentOutOfRangeException("index");

    private static void Advise(void* start, long bytes)
    {
        try
        {
            // Only advice: a kernel without transparent huge pages refuses it and the array works as before.
            _ = MemoryAdvice.Madvise(start, (nuint)bytes, MadvHugePage);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
        }
    }

    /// <summary>
    /// Faults the array's pages in on a background thread (<c>MADV_POPULATE_WRITE</c>, Linux 5.14+), which leaves
    /// their contents alone and so may run while the table is in use. Otherwise the first packets of new flows pay
    /// for zeroing fresh memory on the packet path; under a hypervisor that is milliseconds per huge page.
    /// </summary>
    private static void Populate(CacheLineBytes[] storage, T* start, long bytes)
    {
        var thread = new Thread(() =>
        {
            try
            {
                // An older kernel answers EINVAL: the pages then fault in as the table fills, as they would anyway.
                _ = MemoryAdvice.Madvise(start, (nuint)bytes, MadvPopulateWrite);
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
            }
            GC.KeepAlive(storage);
        })
        { Name = "tripline-populate", IsBackground = true, Priority = ThreadPriority.BelowNormal };
        thread.Start();
    }
}

/// <summary><c>madvise(2)</c>; a generic type cannot hold a generated P/Invoke.</summary>
internal static unsafe partial class MemoryAdvice
{
    [LibraryImport("libc.so.6", EntryPoint = "madvise")]
    internal static partial int Madvise(void* address, nuint length, int advice);
}
