//! Synthetic users for load tests and benchmarks: `claimset users generate`
//! fills a data folder with many realistic users quickly, and the load tool
//! logs in as them. Everything here is deterministic from the user's index,
//! so the tool can name users the generator wrote without reading the store.

/// The password every generated user has. Its hash is computed once per
/// run with the configured Argon2id parameters, so logging in as a
/// generated user costs exactly what a real login costs.
pub const GENERATED_PASSWORD: &str = "Load-test-passw0rd!";

/// The email of generated user number `index` (0-based).
pub fn generated_email(index: u64) -> String {
    format!("user{index}@load.claimset.test")
}

/// The user id of generated user number `index`: `auth0|` and 24 hex
/// digits whose first eight spell `10ad5eed`, so generated users are
/// recognisable and the load tool can address them by index.
pub fn generated_user_id(index: u64) -> String {
    format!("auth0|10ad5eed{index:016x}")
}

use serde_json::{Map, Value, json};

use crate::config::Connection;
use crate::domain::user::User;
use crate::hashing::{HashError, PasswordHasher};
use crate::store::{SledStore, StoreError};

/// Users written per batch: big enough to amortise the flush, small enough
/// to keep memory flat at a million users.
const BATCH: u64 = 20_000;

/// Why generating users stopped.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The one password hash could not be computed.
    #[error("hashing the generated password: {0}")]
    Hash(#[from] HashError),
    /// The store refused a batch (for example: users of this range exist already).
    #[error("writing users: {0}")]
    Store(#[from] StoreError),
}

/// Writes generated users `start .. start + count` into `store` in batches,
/// calling `progress` with the number written so far after each batch.
/// Every user has [`GENERATED_PASSWORD`], hashed once with `hasher`'s
/// parameters. Returns the number written.
pub async fn generate(
    store: &SledStore,
    connection: &Connection,
    hasher: &PasswordHasher,
    start: u64,
    count: u64,
    mut progress: impl FnMut(u64),
) -> Result<u64, GenerateError> {
    let hash = hasher.hash_now(GENERATED_PASSWORD)?;
    let end = start.saturating_add(count);
    let mut next = start;
    while next < end {
        let batch_end = end.min(next + BATCH);
        let users: Vec<User> = (next..batch_end)
            .map(|index| generated_user(index, connection, &hash))
            .collect();
        store.insert_new_users(&users).await?;
        next = batch_end;
        progress(next - start);
    }
    Ok(end - start)
}

/// First names the generator draws from; a realistic share (about one in
/// eight) starts with "jo", the prefix the search benchmark looks for.
#[rustfmt::skip]
const GIVEN_NAMES: &[&str] = &[
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William",
    "Elizabeth", "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Charles", "Karen", "Christopher", "Nancy", "Daniel", "Lisa", "Matthew", "Betty", "Anthony",
    "Margaret", "Mark", "Sandra", "Donald", "Ashley", "Steven", "Kimberly", "Paul", "Emily",
    "Andrew", "Donna", "Joshua", "Michelle", "Kenneth", "Dorothy", "Kevin", "Carol", "Brian",
    "Amanda", "George", "Melissa", "Edward", "Deborah", "Ronald", "Stephanie", "Timothy",
    "Rebecca", "Jason", "Sharon", "Jeffrey", "Laura", "Ryan", "Cynthia", "Jacob", "Kathleen",
    "Gary", "Amy", "Nicholas", "Shirley", "Eric", "Angela", "Jonathan", "Helen", "Stephen",
    "Anna", "Larry", "Brenda", "Justin", "Pamela", "Scott", "Nicole", "Brandon", "Emma",
    "Benjamin", "Samantha", "Samuel", "Katherine", "Gregory", "Christine", "Frank", "Debra",
    "Alexander", "Rachel", "Raymond", "Catherine", "Patrick", "Carolyn", "Jack", "Janet",
    "Dennis", "Ruth", "Jerry", "Maria", "Tyler", "Heather", "Aaron", "Diane", "Jose", "Virginia",
    "Adam", "Julie", "Henry", "Joyce", "Nathan", "Victoria", "Douglas", "Olivia", "Zachary",
    "Kelly", "Peter", "Christina", "Kyle", "Lauren", "Walter", "Joan", "Ethan", "Evelyn",
    "Jeremy", "Judith", "Harold", "Megan", "Keith", "Cheryl", "Christian", "Andrea", "Roger",
    "Hannah", "Noah", "Martha", "Gerald", "Jacqueline", "Carl", "Frances", "Terry", "Gloria",
    "Sean", "Ann", "Austin", "Teresa", "Arthur", "Kathryn", "Lawrence", "Sara", "Jesse", "Janice",
    "Dylan", "Jean", "Bryan", "Alice", "Joe", "Madison", "Jordan", "Doris", "Billy", "Abigail",
    "Bruce", "Julia", "Albert", "Judy", "Willie", "Grace", "Gabriel", "Denise", "Logan", "Amber",
    "Alan", "Marilyn", "Juan", "Beverly", "Wayne", "Danielle", "Roy", "Theresa", "Ralph",
    "Sophia", "Randy", "Marie", "Eugene", "Diana", "Vincent", "Brittany", "Russell", "Natalie",
    "Elijah", "Isabella", "Louis", "Charlotte", "Bobby", "Rose", "Philip", "Alexis", "Johnny",
    "Kayla", "Josephine", "Joanna", "Jolene", "Johanna",
];

/// Family names the generator draws from.
#[rustfmt::skip]
const FAMILY_NAMES: &[&str] = &[
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright",
    "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall",
    "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Gomez", "Phillips", "Evans",
    "Turner", "Diaz", "Parker", "Cruz", "Edwards", "Collins", "Reyes", "Stewart", "Morris",
    "Morales", "Murphy", "Cook", "Rogers", "Gutierrez", "Ortiz", "Morgan", "Cooper", "Peterson",
    "Bailey", "Reed", "Kelly", "Howard", "Ramos", "Kim", "Cox", "Ward", "Richardson", "Watson",
    "Brooks", "Chavez", "Wood", "James", "Bennett", "Gray", "Mendoza", "Ruiz", "Hughes", "Price",
    "Alvarez", "Castillo", "Sanders", "Patel", "Myers", "Long", "Ross", "Foster", "Jimenez",
];

#[rustfmt::skip]
const HOBBIES: &[&str] = &[
    "surfing", "climbing", "chess", "gardening", "cycling", "photography", "baking", "running",
    "painting", "birdwatching", "knitting", "sailing",
];
const LANGUAGES: &[&str] = &["en", "fr", "de", "es", "pt", "it", "nl", "ja", "pl", "sv"];
const COLORS: &[&str] = &[
    "pink", "teal", "navy", "amber", "olive", "crimson", "violet",
];
#[rustfmt::skip]
const CITIES: &[&str] = &[
    "Lisbon", "Austin", "Lyon", "Osaka", "Leeds", "Porto", "Denver", "Gdansk", "Malmo", "Turin",
];
const PLANS: &[&str] = &["free", "free", "free", "pro", "pro", "enterprise"];

/// A deterministic stream of numbers per user (splitmix64): the same index
/// always gives the same user, with no random-number dependency.
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

/// The moment generated timestamps count back from (2026-01-01T00:00:00Z),
/// fixed so a data set is reproducible.
const EPOCH_2026: i64 = 1_767_225_600;

fn iso(unix_seconds: i64) -> String {
    chrono::DateTime::from_timestamp(unix_seconds, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Generated user number `index` of `connection`, with `password_hash` (the
/// hash of [`GENERATED_PASSWORD`], computed once by the caller): a name
/// from common first and family names, a verified email most of the time,
/// a few hundred bytes of `user_metadata` and some `app_metadata`, and
/// creation and login times spread over the three years before 2026.
pub fn generated_user(index: u64, connection: &Connection, password_hash: &str) -> User {
    let mut draw = Draw(index ^ 0x5eed_0000_0000_0000);
    let given = draw.pick(GIVEN_NAMES);
    let family = draw.pick(FAMILY_NAMES);
    let created = EPOCH_2026 - draw.below(3 * 365 * 86_400) as i64;
    let logins_count = draw.below(400);
    let last_login = (logins_count > 0)
        .then(|| created + draw.below((EPOCH_2026 - created).max(1) as u64) as i64);
    let mut user_metadata = Map::new();
    user_metadata.insert("hobby".into(), json!(draw.pick(HOBBIES)));
    user_metadata.insert("lang".into(), json!(draw.pick(LANGUAGES)));
    user_metadata.insert(
        "preferences".into(),
        json!({
            "color": draw.pick(COLORS),
            "newsletter": draw.below(2) == 1,
            "timezone_offset_minutes": (draw.below(25) as i64 - 12) * 60,
        }),
    );
    user_metadata.insert(
        "address".into(),
        json!({
            "city": draw.pick(CITIES),
            "postal_code": format!("{:05}", draw.below(100_000)),
        }),
    );
    user_metadata.insert(
        "bio".into(),
        Value::String(format!(
            "{given} enjoys {} and {} on weekends; member since {}.",
            draw.pick(HOBBIES),
            draw.pick(HOBBIES),
            2023 + draw.below(3)
        )),
    );
    let mut app_metadata = Map::new();
    app_metadata.insert("plan".into(), json!(draw.pick(PLANS)));
    app_metadata.insert(
        "account_id".into(),
        json!(format!("acct_{:08x}", draw.next() as u32)),
    );
    app_metadata.insert("roles".into(), json!(["member"]));
    User {
        user_id: generated_user_id(index),
        connection: connection.name.clone(),
        email: generated_email(index),
        email_verified: draw.below(5) != 0,
        username: connection.requires_username.then(|| format!("user{index}")),
        given_name: Some(given.to_owned()),
        family_name: Some(family.to_owned()),
        name: format!("{given} {family}"),
        nickname: given.to_lowercase(),
        picture: None,
        user_metadata,
        app_metadata,
        password_hash: Some(password_hash.to_owned()),
        blocked: false,
        created_at: iso(created),
        updated_at: iso(last_login.unwrap_or(created)),
        last_login: last_login.map(iso),
        last_ip: None,
        logins_count,
    }
}
