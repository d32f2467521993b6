/* dg_records.c - line-oriented machine data: logs, CSV, JSON lines.
 *
 * Each record is one line. Entities that recur in real data recur here:
 * clients, users, customers and products are drawn from Zipf distributions
 * over a few thousand ids, and their attributes (name, city, price) are a
 * hash of the id, so customer 4821 is always the same person. Timestamps
 * advance by small random steps. Request ids and session ids are random,
 * which keeps the data from compressing better than real logs do. */
#include <string.h>

#include "dg.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static const char *const first_names[] = {
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael",
    "Linda", "David", "Elizabeth", "William", "Barbara", "Richard", "Susan",
    "Joseph", "Jessica", "Thomas", "Sarah", "Carlos", "Karen", "Daniel",
    "Lisa", "Matthew", "Nancy", "Anthony", "Sandra", "Mark", "Ashley", "Paul",
    "Emily", "Steven", "Donna", "Andrew", "Michelle", "Kenji", "Carol", "Ahmed",
    "Amanda", "Luca", "Melissa", "Wei", "Deborah", "Ivan", "Stephanie", "Omar",
    "Rebecca", "Pierre", "Sharon", "Hans", "Laura", "Raj", "Cynthia", "Mateo",
    "Aiko", "Sven", "Fatima", "Diego", "Ingrid", "Yusuf", "Priya", "Olga",
    "Chen", "Amara", "Nils",
};
static const char *const last_names[] = {
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller",
    "Davis", "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez",
    "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
    "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark",
    "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King",
    "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams",
    "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter",
    "Roberts", "Muller", "Schmidt", "Rossi", "Dubois", "Tanaka", "Kowalski",
    "Novak", "Silva", "Larsen", "Ivanov", "Kim", "Singh", "Haddad", "Okafor",
};
static const char *const cities[][2] = {
    {"US", "New York"}, {"US", "Chicago"}, {"US", "Austin"}, {"US", "Seattle"},
    {"GB", "London"}, {"GB", "Leeds"}, {"DE", "Berlin"}, {"DE", "Munich"},
    {"FR", "Paris"}, {"FR", "Lyon"}, {"ES", "Madrid"}, {"ES", "Valencia"},
    {"IT", "Milan"}, {"IT", "Rome"}, {"NL", "Amsterdam"}, {"SE", "Stockholm"},
    {"PL", "Warsaw"}, {"JP", "Tokyo"}, {"JP", "Osaka"}, {"IN", "Bangalore"},
    {"IN", "Mumbai"}, {"BR", "Sao Paulo"}, {"MX", "Mexico City"},
    {"CA", "Toronto"}, {"AU", "Sydney"}, {"KR", "Seoul"}, {"SG", "Singapore"},
    {"NG", "Lagos"}, {"EG", "Cairo"}, {"ZA", "Cape Town"}, {"AR", "Cordoba"},
    {"NO", "Oslo"},
};
static const char *const categories[] = {
    "electronics", "books", "garden", "toys", "kitchen", "sports", "clothing",
    "beauty", "grocery", "office", "music", "automotive", "health", "pets",
    "tools", "games",
};
static const char *const user_agents[] = {
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0.0.0 Mobile Safari/537.36",
    "curl/8.5.0",
    "python-requests/2.31.0",
    "Go-http-client/2.0",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "okhttp/4.12.0",
    "Prometheus/2.50.1",
    "kube-probe/1.29",
};
static const char *const methods[] = { "GET", "GET", "GET", "GET", "POST", "GET", "PUT", "DELETE" };
static const char *const statuses[] = {
    "200", "200", "200", "200", "200", "200", "200", "200", "200", "200",
    "200", "200", "200", "304", "200", "201", "404", "302", "204", "500",
};
static const char *const components[] = {
    "orders.service", "auth.session", "cart.api", "search.index",
    "payments.gateway", "inventory.sync", "db.pool", "http.client",
};
static const char *const events[] = {
    "page_view", "page_view", "page_view", "click", "click", "search",
    "add_to_cart", "purchase", "login", "logout", "error", "scroll",
};
static const char *const devices[][2] = {
    {"desktop", "Windows 11"}, {"desktop", "macOS 14.3"}, {"mobile", "iOS 17.3"},
    {"mobile", "Android 14"}, {"tablet", "iPadOS 17.2"}, {"desktop", "Ubuntu 22.04"},
};
static const char *const payments[] = { "card", "card", "card", "paypal", "bank_transfer", "gift_card" };
static const char *const order_status[] = {
    "delivered", "delivered", "shipped", "shipped", "processing", "cancelled", "returned", "pending",
};
static const char *const tags[] = {
    "returning", "new", "promo", "mobile", "eu", "us", "beta", "newsletter",
};

static uint64_t mix(uint64_t x)
{
    x ^= x >> 31;
    x *= 0x7fb5d329728ea185ull;
    x ^= x >> 27;
    x *= 0x81dadef4bc2dd44dull;
    return x ^ (x >> 33);
}

static void advance_clock(dg_gen *g, unsigned max_step_ms)
{
    g->clock_ms += dg_below(&g->rng, max_step_ms);
}

static void put_ipv4(dg_sink *s, uint64_t h)
{
    static const unsigned nets[] = { 10, 172, 192, 203, 198, 81, 93, 185 };
    dg_put_u(s, nets[h & 7]);
    for (int i = 1; i < 4; i++) {
        dg_putc(s, '.');
        dg_put_u(s, (h >> (8 * i)) & 0xff);
    }
}

/* A random (version 4) UUID. */
static void put_uuid(dg_sink *s, dg_rng *r)
{
    uint64_t a = dg_next(r), b = dg_next(r);
    dg_put_hex(s, a >> 32, 8);
    dg_putc(s, '-');
    dg_put_hex(s, a >> 16, 4);
    dg_puts(s, "-4");
    dg_put_hex(s, a, 3);
    dg_putc(s, '-');
    dg_put_hex(s, 0x8000 | (b >> 50), 4);
    dg_putc(s, '-');
    dg_put_hex(s, b, 12);
}

static void put_name(dg_sink *s, uint64_t h)
{
    dg_puts(s, first_names[h % NELEM(first_names)]);
    dg_putc(s, ' ');
    dg_puts(s, last_names[(h >> 8) % NELEM(last_names)]);
}

static void put_lower(dg_sink *s, const char *p)
{
    size_t start = s->len;
    dg_puts(s, p);
    for (size_t i = start; i < s->len; i++)
        if (s->buf[i] >= 'A' && s->buf[i] <= 'Z')
            s->buf[i] = (char)(s->buf[i] + 32);
}

static void put_email(dg_sink *s, uint64_t h)
{
    static const char *const domains[] = { "example.com", "mail.example.org", "corp.example.net", "example.io" };
    put_lower(s, first_names[h % NELEM(first_names)]);
    dg_putc(s, '.');
    put_lower(s, last_names[(h >> 8) % NELEM(last_names)]);
    dg_put_u(s, (h >> 16) % 100);
    dg_putc(s, '@');
    dg_puts(s, domains[(h >> 24) & 3]);
}

/* A request path built from a Zipf-chosen template and ids. */
static void put_path(dg_gen *g, dg_sink *s)
{
    dg_rng *r = &g->rng;
    uint32_t which = dg_zipf_draw(&g->t->small_zipf, r) % 12;
    uint32_t id = dg_zipf_draw(&g->t->mid_zipf, r);
    switch (which) {
    case 0: dg_puts(s, "/api/v1/products/"); dg_put_u(s, 10000 + id); break;
    case 1: dg_puts(s, "/api/v1/users/"); dg_put_u(s, 500 + id); dg_puts(s, "/orders?page="); dg_put_u(s, 1 + dg_below(r, 5)); break;
    case 2: dg_puts(s, "/"); break;
    case 3: dg_puts(s, "/static/js/app."); dg_put_hex(s, mix(id) >> 32, 8); dg_puts(s, ".js"); break;
    case 4: dg_puts(s, "/search?q="); dg_put_word(s, g->t, dg_zipf_draw(&g->t->word_zipf, r));
            dg_putc(s, '+'); dg_put_word(s, g->t, dg_zipf_draw(&g->t->word_zipf, r)); break;
    case 5: dg_puts(s, "/images/products/"); dg_put_u(s, 10000 + id); dg_puts(s, "_thumb.jpg"); break;
    case 6: dg_puts(s, "/api/v1/cart"); break;
    case 7: dg_puts(s, "/healthz"); break;
    case 8: dg_puts(s, "/category/"); dg_puts(s, categories[id % NELEM(categories)]); break;
    case 9: dg_puts(s, "/api/v1/sessions"); break;
    case 10: dg_puts(s, "/static/css/main."); dg_put_hex(s, mix(id + 7) >> 32, 8); dg_puts(s, ".css"); break;
    default: dg_puts(s, "/blog/"); dg_put_word(s, g->t, dg_zipf_draw(&g->t->word_zipf, r) % 2000);
             dg_putc(s, '-'); dg_put_word(s, g->t, dg_zipf_draw(&g->t->word_zipf, r)); break;
    }
}

static void log_access(dg_gen *g, dg_sink *s)
{
    dg_rng *r = &g->rng;
    const dg_tables *t = g->t;
    dg_puts(s, " web ");
    /* Half the requests come from a few thousand regular clients. */
    put_ipv4(s, dg_chance(r, 1, 2) ? mix(dg_zipf_draw(&t->mid_zipf, r) + g->seed) : dg_next(r));
    dg_puts(s, " \"");
    dg_puts(s, methods[dg_below(r, NELEM(methods))]);
    dg_putc(s, ' ');
    put_path(g, s);
    dg_puts(s, " HTTP/1.1\" ");
    dg_puts(s, statuses[dg_below(r, NELEM(statuses))]);
    dg_putc(s, ' ');
    dg_put_u(s, dg_lognormal_clamped(r, 64, 262144));
    dg_putc(s, ' ');
    dg_put_fixed(s, dg_lognormal_clamped(r, 1, 4000), 3);     /* seconds */
    if (dg_chance(r, 2, 5)) {
        dg_puts(s, " \"-\"");
    } else {
        dg_puts(s, " \"https://shop.example.com");
        put_path(g, s);
        dg_putc(s, '"');
    }
    dg_puts(s, " \"");
    dg_puts(s, user_agents[dg_zipf_draw(&t->small_zipf, r) % NELEM(user_agents)]);
    dg_puts(s, "\" rid=");
    put_uuid(s, r);
    dg_puts(s, " upstream=10.0.");
    dg_put_u(s, dg_below(r, 4));
    dg_putc(s, '.');
    dg_put_u(s, 10 + dg_below(r, 12));
    dg_puts(s, ":8080");
}

static void log_app(dg_gen *g, dg_sink *s)
{
    dg_rng *r = &g->rng;
    unsigned kind = (unsigned)dg_below(r, 10);
    static const char *const levels[] = { "INFO ", "INFO ", "INFO ", "INFO ", "INFO ",
                                          "INFO ", "DEBUG", "INFO ", "WARN ", "ERROR" };
    dg_puts(s, " app ");
    dg_puts(s, levels[kind]);
    dg_puts(s, " trace=");
    dg_put_hex(s, dg_next(r), 16);
    dg_put_hex(s, dg_next(r), 16);
    dg_puts(s, " [worker-");
    dg_put_u(s, dg_below(r, 8));
    dg_puts(s, "] ");
    dg_puts(s, components[kind % NELEM(components)]);
    dg_puts(s, ": ");
    uint32_t user = dg_zipf_draw(&g->t->mid_zipf, r);
    switch (kind) {
    case 0: dg_puts(s, "order "); dg_put_u(s, 1000000 + g->serial); dg_puts(s, " processed for user ");
            dg_put_u(s, 500 + user); dg_puts(s, " in "); dg_put_u(s, dg_lognormal_clamped(r, 2, 2000)); dg_puts(s, " ms"); break;
    case 1: dg_puts(s, "session opened for user "); dg_put_u(s, 500 + user); dg_puts(s, " token=");
            dg_put_hex(s, dg_next(r), 12); break;
    case 2: dg_puts(s, "cart updated user="); dg_put_u(s, 500 + user); dg_puts(s, " items=");
            dg_put_u(s, 1 + dg_below(r, 9)); break;
    case 3: dg_puts(s, "query \""); dg_put_word(s, g->t, dg_zipf_draw(&g->t->word_zipf, r));
            dg_puts(s, "\" matched "); dg_put_u(s, dg_below(r, 500)); dg_puts(s, " documents"); break;
    case 4: dg_puts(s, "payment authorized amount="); dg_put_fixed(s, dg_lognormal_clamped(r, 199, 99999), 2);
            dg_puts(s, " currency=EUR ref="); dg_put_hex(s, dg_next(r), 10); break;
    case 5: dg_puts(s, "synced "); dg_put_u(s, dg_below(r, 400)); dg_puts(s, " stock levels from warehouse ");
            dg_put_u(s, 1 + dg_below(r, 6)); break;
    case 6: dg_puts(s, "pool stats active="); dg_put_u(s, dg_below(r, 32)); dg_puts(s, " idle=");
            dg_put_u(s, dg_below(r, 16)); dg_puts(s, " waiting=0"); break;
    case 7: dg_puts(s, "upstream inventory responded in "); dg_put_u(s, dg_lognormal_clamped(r, 3, 900));
            dg_puts(s, " ms"); break;
    case 8: dg_puts(s, "slow query on table "); dg_put_word(s, g->t, dg_zipf_draw(&g->t->word_zipf, r) % 300);
            dg_puts(s, " took "); dg_put_u(s, dg_lognormal_clamped(r, 500, 9000)); dg_puts(s, " ms"); break;
    default: dg_puts(s, "request to http://inventory:8080/v2/items/"); dg_put_u(s, 10000 + user);
             dg_puts(s, " failed: connection reset by peer (attempt "); dg_put_u(s, 1 + dg_below(r, 3));
             dg_puts(s, " of 3)"); break;
    }
}

/* 2024-03-05T12:34:56.789Z web 81.12.34.56 "GET /path HTTP/1.1" 200 1532 0.012 "agent" rid=...
 * 2024-03-05T12:34:56.791Z app INFO  [worker-3] orders.service: ... */
void dg_log_record(dg_gen *g, dg_sink *s)
{
    advance_clock(g, 120);
    g->serial++;
    dg_put_iso_time(s, g->clock_ms);
    if (dg_chance(&g->rng, 7, 10))
        log_access(g, s);
    else
        log_app(g, s);
    dg_putc(s, '\n');
}

/* order_id,created_at,customer_id,name,email,country,city,sku,category,
 * quantity,unit_price,total,payment,status */
void dg_csv_record(dg_gen *g, dg_sink *s)
{
    dg_rng *r = &g->rng;
    if (!g->header_done) {
        dg_puts(s, "order_id,created_at,customer_id,name,email,country,city,sku,"
                   "category,quantity,unit_price,total,payment,status\n");
        g->header_done = 1;
        return;
    }
    advance_clock(g, 30000);
    uint64_t cust = dg_zipf_draw(&g->t->mid_zipf, r), ch = mix(cust + 1);
    uint64_t sku = dg_zipf_draw(&g->t->mid_zipf, r), ph = mix(sku + 99);
    uint64_t qty = dg_chance(r, 3, 4) ? 1 : dg_range(r, 2, 6);
    uint64_t price = 99 + ph % 25000;
    dg_put_u(s, 5000000 + g->serial++);
    dg_putc(s, ',');
    size_t at = s->len;
    dg_put_iso_time(s, g->clock_ms);
    s->buf[at + 10] = ' ';
    s->len -= 5;                       /* drop ".mmmZ": 2024-03-05 12:34:56 */
    dg_putc(s, ',');
    dg_put_u(s, 100000 + cust);
    dg_putc(s, ',');
    put_name(s, ch);
    dg_putc(s, ',');
    put_email(s, ch);
    dg_putc(s, ',');
    dg_puts(s, cities[(ch >> 32) % NELEM(cities)][0]);
    dg_putc(s, ',');
    dg_puts(s, cities[(ch >> 32) % NELEM(cities)][1]);
    dg_puts(s, ",SKU-");
    dg_put_u0(s, sku, 5);
    dg_putc(s, ',');
    dg_puts(s, categories[ph % NELEM(categories)]);
    dg_putc(s, ',');
    dg_put_u(s, qty);
    dg_putc(s, ',');
    dg_put_fixed(s, price, 2);
    dg_putc(s, ',');
    dg_put_fixed(s, price * qty, 2);
    dg_putc(s, ',');
    dg_puts(s, payments[dg_below(r, NELEM(payments))]);
    dg_putc(s, ',');
    dg_puts(s, order_status[dg_below(r, NELEM(order_status))]);
    dg_putc(s, '\n');
}

static void json_key(dg_sink *s, const char *key, int first)
{
    if (!first)
        dg_putc(s, ',');
    dg_putc(s, '"');
    dg_puts(s, key);
    dg_puts(s, "\":");
}

static void json_str(dg_sink *s, const char *key, const char *val)
{
    json_key(s, key, 0);
    dg_putc(s, '"');
    dg_puts(s, val);
    dg_putc(s, '"');
}

/* One analytics event per line, with nested objects and an array. */
void dg_jsonl_record(dg_gen *g, dg_sink *s)
{
    dg_rng *r = &g->rng;
    advance_clock(g, 400);
    uint64_t user = dg_zipf_draw(&g->t->mid_zipf, r), uh = mix(user + 5);
    unsigned ev = (unsigned)dg_below(r, NELEM(events));
    dg_putc(s, '{');
    json_key(s, "ts", 1);
    dg_putc(s, '"');
    dg_put_iso_time(s, g->clock_ms);
    dg_putc(s, '"');
    json_str(s, "event", events[ev]);
    json_key(s, "id", 0);
    dg_put_u(s, 90000000 + g->serial++);
    json_key(s, "user", 0);
    dg_puts(s, "{\"id\":");
    dg_put_u(s, 100000 + user);
    json_key(s, "name", 0);
    dg_putc(s, '"');
    put_name(s, uh);
    dg_putc(s, '"');
    json_str(s, "plan", (uh >> 40) % 5 == 0 ? "pro" : "free");
    json_key(s, "country", 0);
    dg_putc(s, '"');
    dg_puts(s, cities[(uh >> 32) % NELEM(cities)][0]);
    dg_puts(s, "\"}");
    json_key(s, "session", 0);
    dg_putc(s, '"');
    dg_put_hex(s, mix(user ^ (g->clock_ms / 1800000)), 12);
    dg_putc(s, '"');
    unsigned dev = (unsigned)((uh >> 20) % NELEM(devices));
    json_key(s, "device", 0);
    dg_puts(s, "{\"type\":\"");
    dg_puts(s, devices[dev][0]);
    dg_puts(s, "\",\"os\":\"");
    dg_puts(s, devices[dev][1]);
    dg_puts(s, "\"}");
    json_key(s, "page", 0);
    dg_putc(s, '"');
    put_path(g, s);
    dg_putc(s, '"');
    if (ev == 5) {
        json_key(s, "query", 0);
        dg_putc(s, '"');
        dg_put_word(s, g->t, dg_zipf_draw(&g->t->word_zipf, r));
        dg_putc(s, ' ');
        dg_put_word(s, g->t, dg_zipf_draw(&g->t->word_zipf, r));
        dg_putc(s, '"');
    }
    if (ev == 6 || ev == 7) {
        json_key(s, "value", 0);
        dg_put_fixed(s, dg_lognormal_clamped(r, 199, 49999), 2);
    }
    json_key(s, "duration_ms", 0);
    dg_put_u(s, dg_lognormal_clamped(r, 1, 30000));
    json_key(s, "tags", 0);
    dg_putc(s, '[');
    unsigned ntags = (unsigned)dg_below(r, 4);
    for (unsigned i = 0; i < ntags; i++) {
        if (i)
            dg_putc(s, ',');
        dg_putc(s, '"');
        dg_puts(s, tags[(uh >> (4 * i)) % NELEM(tags)]);
        dg_putc(s, '"');
    }
    dg_puts(s, "]}\n");
}
