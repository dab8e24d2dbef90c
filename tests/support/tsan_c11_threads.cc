// ThreadSanitizer builds only (FANPULL_SANITIZE=thread). librdkafka runs on C11 threads: glibc's
// thrd_create, mtx_* and cnd_* call pthreads internally, where gcc's ThreadSanitizer cannot see
// them, so librdkafka's threads start without sanitizer state (and crash in its allocator) and
// its locks do not order anything for it. Linked into each executable, these definitions take the
// place of glibc's and go through the pthread functions ThreadSanitizer intercepts. In glibc,
// thrd_t is a pthread_t and mtx_t / cnd_t have the layout of pthread_mutex_t / pthread_cond_t.
#include <pthread.h>
#include <threads.h>

#include <cerrno>
#include <cstdint>
#include <new>

namespace {

struct Start {
  thrd_start_t func;
  void* arg;
};

void* trampoline(void* p) {
  Start start = *static_cast<Start*>(p);
  delete static_cast<Start*>(p);
  return reinterpret_cast<void*>(static_cast<intptr_t>(start.func(start.arg)));
}

int result(int err) {
  if (err == 0) return thrd_success;
  if (err == ETIMEDOUT) return thrd_timedout;
  if (err == EBUSY) return thrd_busy;
  if (err == ENOMEM) return thrd_nomem;
  return thrd_error;
}

pthread_mutex_t* native(mtx_t* m) { return reinterpret_cast<pthread_mutex_t*>(m); }
pthread_cond_t* native(cnd_t* c) { return reinterpret_cast<pthread_cond_t*>(c); }

}  // namespace

extern "C" {

int thrd_create(thrd_t* thr, thrd_start_t func, void* arg) {
  auto* start = new (std::nothrow) Start{func, arg};
  if (start == nullptr) return thrd_nomem;
  int err = pthread_create(thr, nullptr, trampoline, start);
  if (err != 0) delete start;
  return result(err);
}

int thrd_join(thrd_t thr, int* res) {
  void* value = nullptr;
  int err = pthread_join(thr, &value);
  if (err == 0 && res != nullptr) *res = static_cast<int>(reinterpret_cast<intptr_t>(value));
  return result(err);
}

int thrd_detach(thrd_t thr) { return result(pthread_detach(thr)); }

int mtx_init(mtx_t* m, int type) {
  pthread_mutexattr_t attr;
  pthread_mutexattr_init(&attr);
  if (type & mtx_recursive) pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
  int err = pthread_mutex_init(native(m), &attr);
  pthread_mutexattr_destroy(&attr);
  return result(err);
}

int mtx_lock(mtx_t* m) { return result(pthread_mutex_lock(native(m))); }
int mtx_trylock(mtx_t* m) { return result(pthread_mutex_trylock(native(m))); }
int mtx_timedlock(mtx_t* __restrict m, const struct timespec* __restrict until) {
  return result(pthread_mutex_timedlock(native(m), until));
}
int mtx_unlock(mtx_t* m) { return result(pthread_mutex_unlock(native(m))); }
void mtx_destroy(mtx_t* m) { pthread_mutex_destroy(native(m)); }

int cnd_init(cnd_t* c) { return result(pthread_cond_init(native(c), nullptr)); }
int cnd_signal(cnd_t* c) { return result(pthread_cond_signal(native(c))); }
int cnd_broadcast(cnd_t* c) { return result(pthread_cond_broadcast(native(c))); }
int cnd_wait(cnd_t* c, mtx_t* m) { return result(pthread_cond_wait(native(c), native(m))); }
int cnd_timedwait(cnd_t* __restrict c, mtx_t* __restrict m,
                  const struct timespec* __restrict until) {
  return result(pthread_cond_timedwait(native(c), native(m), until));
}
void cnd_destroy(cnd_t* c) { pthread_cond_destroy(native(c)); }

}  // extern "C"
