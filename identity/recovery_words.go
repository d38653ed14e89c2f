package identity

// recoveryWordList holds the 256 recovery words; a word's index is the byte
// it stands for. Written for Parley: common, concrete English words of 4 to
// 6 letters, no US/UK spelling variants, no word a prefix of another and
// every two words at least two edits apart (TestRecoveryWordList checks it),
// so one typo never turns a word into another word. The list is part of the
// recovery format: never reorder or change it.
var recoveryWordList = [256]string{
	"alarm", "album", "alley", "almond", "amber", "anchor", "angle", "apple",
	"arena", "arrow", "artist", "atlas", "attic", "autumn", "bacon", "badge",
	"bakery", "bamboo", "banana", "banjo", "barrel", "basket", "beach", "beard",
	"border", "bottle", "branch", "bread", "bridge", "bronze", "bubble", "bucket",
	"buckle", "budget", "butter", "button", "cabin", "cactus", "camel", "camera",
	"canal", "candle", "canoe", "canyon", "cargo", "carpet", "carrot", "castle",
	"chalk", "chapel", "cherry", "cinema", "circle", "clock", "cloud", "coast",
	"cobra", "coffee", "comet", "cookie", "copper", "corner", "cotton", "cradle",
	"crater", "crayon", "crown", "daisy", "dancer", "desert", "dinner", "doctor",
	"domino", "donkey", "dragon", "drawer", "dream", "duck", "dune", "dust",
	"eagle", "earth", "echo", "elbow", "engine", "falcon", "family", "farmer",
	"fence", "finger", "flag", "flame", "flute", "forest", "fossil", "fruit",
	"funnel", "gadget", "galaxy", "garden", "garlic", "ghost", "giant", "glove",
	"goat", "goblin", "gold", "grape", "gravel", "guitar", "hammer", "helmet",
	"hero", "hockey", "honey", "hornet", "hotel", "hunter", "igloo", "indigo",
	"insect", "island", "ivory", "jacket", "jaguar", "jelly", "judge", "juice",
	"jungle", "kayak", "kettle", "kitten", "koala", "ladder", "lagoon", "laptop",
	"lawyer", "lemon", "letter", "lilac", "linen", "lizard", "locket", "lumber",
	"magnet", "mango", "maple", "marble", "market", "meadow", "melon", "mirror",
	"moose", "muffin", "museum", "napkin", "needle", "nest", "noodle", "north",
	"novel", "nugget", "nurse", "ocean", "olive", "onion", "opera", "orange",
	"orbit", "orchid", "otter", "oven", "oyster", "paddle", "palace", "panda",
	"pantry", "pasta", "peanut", "pebble", "pencil", "pepper", "piano", "pickle",
	"pillow", "pilot", "pirate", "planet", "poem", "potato", "powder", "puppet",
	"puzzle", "queen", "quilt", "rabbit", "radar", "radio", "radish", "raft",
	"raisin", "raven", "ribbon", "riddle", "river", "robot", "rubber", "ruby",
	"salad", "scarf", "school", "season", "shadow", "shelf", "shovel", "shrimp",
	"silver", "sister", "skate", "sketch", "soda", "spider", "spiral", "sponge",
	"spoon", "statue", "stove", "sugar", "summer", "sunset", "swamp", "table",
	"taco", "tiger", "timber", "tomato", "tower", "trophy", "tulip", "turkey",
	"turtle", "uncle", "velvet", "violin", "viper", "voyage", "waffle", "wagon",
	"walnut", "wheat", "window", "winter", "wolf", "yellow", "zebra", "zipper",
}
