using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Tripline.Capture.Flows;

/// <summary>
/// Allocates the flow table's large arrays so that Linux backs them with transparent huge pages where it allows
/// (<c>MADV_HUGEPAGE</c>; the common <c>madvise</c> setting of <c>/sys/kernel/mm/transparent_hugepage/enabled</c>
/// gives huge pages only to memory that asks). A table of 65,536 flows spans 23 MB: in 4 KiB pages every lookup
/// of a random slot is also a TLB miss, and under a hypervisor a page walk costs several memory accesses; in
/// 2 MiB pages the whole table needs a dozen TLB entries.
/// </summary>
internal static unsafe partial class HugePageArray
{
    private const int MadvHugePage = 14;
    private const int MadvPopulateWrite = 23;
    private const long HugePageBytes = 2 * 1024 * 1024;

    /// <summary>A zeroed, pinned array whose whole 2 MiB pages are advised; pages still untouched fault in huge.</summary>
    public static T[] Allocate<T>(int length) where T : unmanaged
    {
        long bytes = (long)length * sizeof(T);
        if (bytes < 2 * HugePageBytes) return new T[length];
        // Pinned, so the address advised stays the array's. Not cleared again here: memory fresh from the kernel is
        // already zero and untouched, and touching all of it up front would cost start-up what a small replay never uses.
        var array = GC.AllocateArray<T>(length, pinned: true);
        void* start = Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array));
        Advise(start, bytes);
        Populate(array, (nint)start, bytes);
        return array;
    }

    private static void Advise(void* start, long bytes)
    {
        if (!OperatingSystem.IsLinux()) return;
        long first = ((long)start + HugePageBytes - 1) & ~(HugePageBytes - 1);
        long end = ((long)start + bytes) & ~(HugePageBytes - 1);
        if (end <= first) return;
        try
        {
            // Only advice: a kernel without transparent huge pages refuses it and the table works as before.
            _ = Madvise((void*)first, (nuint)(end - first), MadvHugePage);
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
    private static void Populate(Array array, nint start, long bytes)
    {
        if (!OperatingSystem.IsLinux()) return;
        var thread = new Thread(() =>
        {
            try
            {
                // madvise wants a page-aligned start; the neighbouring bytes of the first page are only faulted in, never
                // written. An older kernel answers EINVAL: the pages then fault in as the table fills, as they would anyway.
                long first = start & ~4095L;
                _ = Madvise((void*)first, (nuint)(start + bytes - first), MadvPopulateWrite);
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
            }
            GC.KeepAlive(array);
        })
        { Name = "tripline-populate", IsBackground = true, Priority = ThreadPriority.BelowNormal };
        thread.Start();
    }

    [LibraryImport("libc.so.6", EntryPoint = "madvise")]
    private static partial int Madvise(void* address, nuint length, int advice);
}
